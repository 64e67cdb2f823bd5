"""The testers' tooling: bot representatives (planned and reactive), simulated assemblies and
local test networks.  The node shell (``p2p/*.py``) never imports it; testnet nodes load reactive
bots through the command line (``klero node --bots``)."""
