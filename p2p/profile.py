"""Profiles: a representative's identity and replica under the platformdirs data directory.

A profile is a folder ``profiles/NAME`` holding ``identity.json`` (the Ed25519 key, its secret
half encrypted at rest with a key derived from a passphrase by Argon2id, sealed with
``SecretBox``) and ``replica.sqlite`` (the replica store).  ``KLERO_HOME`` overrides the data
directory (tests and several local nodes use it).

The secret key never leaves this module unencrypted except as the ``SigningKey`` returned by
:func:`unlock`; it is never written to logs, exports or error messages.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nacl.pwhash
import nacl.utils
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from consensus.errors import KleroError

FORMAT = "klero-identity/1"
PASSPHRASE_ENV = "KLERO_PASSPHRASE"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Argon2id cost presets (libsodium's).  Keys at rest default to "moderate" (256 MiB, ~1 s
#: here): unlocking happens once per session, and a stolen file should be expensive to attack.
KDF_PRESETS = {
    "interactive": (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "sensitive": (nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE),
}
#: a hostile identity file must not make us allocate without bound
MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE * 4


class ProfileError(KleroError):
    """A profile is missing, damaged, or cannot be unlocked."""


def data_dir() -> Path:
    """Where profiles live: ``$KLERO_HOME`` or the platform's user data directory."""
    home = os.environ.get("KLERO_HOME")
    if home:
        return Path(home)
    import platformdirs

    return Path(platformdirs.user_data_dir("kleroterion", appauthor=False))


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path

    @property
    def identity_path(self) -> Path:
        return self.path / "identity.json"

    @property
    def replica_path(self) -> Path:
        return self.path / "replica.sqlite"

    def public_key(self) -> bytes:
        return bytes.fromhex(_read_identity(self)["public_key"])

    @property
    def settings_path(self) -> Path:
        return self.path / "settings.json"

    def settings(self) -> dict:
        """The node settings a person wrote in ``settings.json`` (all optional):
        ``{"port": 4001, "bootstrap": ["/ip4/…/tcp/…/p2p/…"], "beacon_relays": ["https://…"],
        "mdns": true, "observer": false, "panel_duties": true}``.  Command-line options override them."""
        import json

        try:
            value = json.loads(self.settings_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{self.settings_path} is not valid JSON ({exc}); fix or remove it.") from None
        kinds = {"port": int, "bootstrap": list, "beacon_relays": list, "mdns": bool, "observer": bool, "panel_duties": bool}
        if not isinstance(value, dict):
            raise ProfileError(f"{self.settings_path} must hold a JSON object.")
        for key, item in value.items():
            if key not in kinds:
                raise ProfileError(f"{self.settings_path} has an unknown setting {key!r}; known: {', '.join(kinds)}.")
            if type(item) is not kinds[key] or (kinds[key] is list and not all(isinstance(x, str) for x in item)):
                raise ProfileError(f"The setting {key!r} in {self.settings_path} must be a {kinds[key].__name__}"
                                   f"{' of strings' if kinds[key] is list else ''}.")
        if not 0 <= value.get("port", 0) <= 65535:
            raise ProfileError(f"The port in {self.settings_path} must be from 0 to 65535.")
        return value


def profile(name: str) -> Profile:
    """The profile called ``name`` (it need not exist yet)."""
    if not NAME_RE.match(name or ""):
        raise ProfileError(
            f"{name!r} is not a usable profile name: use 1 to 64 letters, digits, dots, dashes or underscores."
        )
    return Profile(name, data_dir() / "profiles" / name)


def existing(name: str) -> Profile:
    p = profile(name)
    if not p.identity_path.exists():
        raise ProfileError(f"There is no profile {name!r}; create it with: klero init --profile {name}")
    return p


def create(name: str, passphrase: str, *, kdf: str = "moderate", seed: bytes | None = None) -> tuple[Profile, bytes]:
    """Create a new identity (or, with ``seed``, recreate one from its recovery phrase); returns
    the profile and its public key."""
    p = profile(name)
    if p.identity_path.exists():
        raise ProfileError(f"The profile {name!r} already exists at {p.path}; choose another name.")
    if len(passphrase) < 8:
        raise ProfileError("The passphrase must have at least 8 characters.")
    if kdf not in KDF_PRESETS:
        raise ProfileError(f"Unknown key derivation preset {kdf!r}; use one of {', '.join(KDF_PRESETS)}.")
    opslimit, memlimit = KDF_PRESETS[kdf]
    key = SigningKey(seed) if seed is not None else SigningKey.generate()
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = SecretBox(nacl.pwhash.argon2id.kdf(SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit))
    sealed = box.encrypt(bytes(key))
    record = {
        "format": FORMAT,
        "public_key": bytes(key.verify_key).hex(),
        "kdf": "argon2id",
        "opslimit": opslimit,
        "memlimit": memlimit,
        "salt": salt.hex(),
        "sealed_secret_key": sealed.hex(),
    }
    p.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(p.identity_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    return p, bytes(key.verify_key)


def _seal(key: SigningKey, passphrase: str, opslimit: int, memlimit: int) -> dict:
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = SecretBox(nacl.pwhash.argon2id.kdf(SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit))
    return {"format": FORMAT, "public_key": bytes(key.verify_key).hex(), "kdf": "argon2id", "opslimit": opslimit,
            "memlimit": memlimit, "salt": salt.hex(), "sealed_secret_key": box.encrypt(bytes(key)).hex()}


def recovery_phrase(key: SigningKey) -> str:
    """The 24 words (BIP39, English) that recreate ``key``: its 32-byte seed with a checksum.
    Anyone holding them holds the key: written down once, kept offline."""
    from mnemonic import Mnemonic

    return Mnemonic("english").to_mnemonic(bytes(key))


def seed_from_phrase(words: str) -> bytes:
    """The key seed a recovery phrase encodes, or a ProfileError saying what is wrong with it."""
    from mnemonic import Mnemonic

    m = Mnemonic("english")
    words = " ".join(words.lower().split())
    unknown = [w for w in words.split() if w not in m.wordlist]
    if unknown:
        raise ProfileError(f"{len(unknown)} word(s) are not recovery words (for example {unknown[0]!r}); check the spelling.")
    if len(words.split()) != 24:
        raise ProfileError(f"A recovery phrase has 24 words; this one has {len(words.split())}.")
    if not m.check(words):
        raise ProfileError("The recovery phrase's checksum does not match: a word is wrong or two are swapped.")
    return bytes(m.to_entropy(words))


def change_passphrase(p: Profile, old: str, new: str) -> None:
    """Seal the key again under a new passphrase (the identity, and so the public key, stay)."""
    if len(new) < 8:
        raise ProfileError("The new passphrase must have at least 8 characters.")
    key = unlock(p, old)
    record = _read_identity(p)
    sealed = _seal(key, new, int(record["opslimit"]), int(record["memlimit"]))
    tmp = p.identity_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(sealed, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, p.identity_path)


def backup(p: Profile, path: str | os.PathLike) -> Path:
    """Write the identity file, still sealed by the passphrase, to ``path`` (a USB stick, a
    second machine): with the passphrase it restores the key (``klero init --from-backup``)."""
    record = _read_identity(p)
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out, indent=2)
    return path


def restore(name: str, path: str | os.PathLike, passphrase: str) -> tuple[Profile, bytes]:
    """A new profile from a backup file (checked by unlocking it with its passphrase)."""
    p = profile(name)
    if p.identity_path.exists():
        raise ProfileError(f"The profile {name!r} already exists at {p.path}; choose another name.")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ProfileError(f"Cannot read the backup {path}: {exc.strerror}.") from None
    p.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(p.identity_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(raw[:65536])
    try:
        key = unlock(p, passphrase)
    except ProfileError:
        p.identity_path.unlink()
        raise
    return p, bytes(key.verify_key)


def unlock(p: Profile, passphrase: str) -> SigningKey:
    """Decrypt the profile's signing key."""
    record = _read_identity(p)
    try:
        opslimit, memlimit = int(record["opslimit"]), int(record["memlimit"])
        salt = bytes.fromhex(record["salt"])
        sealed = bytes.fromhex(record["sealed_secret_key"])
    except (KeyError, ValueError, TypeError):
        raise ProfileError(f"The identity file of profile {p.name!r} is damaged.") from None
    if not (nacl.pwhash.argon2id.OPSLIMIT_MIN <= opslimit <= MAX_OPSLIMIT
            and nacl.pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT and len(salt) == nacl.pwhash.argon2id.SALTBYTES):
        raise ProfileError(f"The identity file of profile {p.name!r} has impossible key derivation settings.")
    box = SecretBox(nacl.pwhash.argon2id.kdf(SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit))
    try:
        key = SigningKey(box.decrypt(sealed))
    except CryptoError:
        raise ProfileError(f"The passphrase for profile {p.name!r} is wrong.") from None
    if bytes(key.verify_key).hex() != record.get("public_key"):
        raise ProfileError(f"The identity file of profile {p.name!r} is damaged (its keys do not match).")
    return key


def _read_identity(p: Profile) -> dict:
    try:
        raw = p.identity_path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(f"There is no profile {p.name!r}; create it with: klero init --profile {p.name}") from None
    if len(raw) > 65536:
        raise ProfileError(f"The identity file of profile {p.name!r} is damaged (too large).")
    try:
        record = json.loads(raw)
    except ValueError:
        raise ProfileError(f"The identity file of profile {p.name!r} is damaged (not JSON).") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("public_key"), str):
        raise ProfileError(f"The identity file of profile {p.name!r} is not a Kleroterion identity.")
    return record


def _hold_secrets() -> None:
    """No core dumps from a process about to hold an unlocked key (POSIX)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass


def read_passphrase(passphrase_file: str | None, *, confirm: bool = False) -> str:
    """The passphrase from ``--passphrase-file``, ``$KLERO_PASSPHRASE`` or the terminal, in that order.

    From then on this process holds a secret: it makes no core dump (which would write the
    unlocked key to disk).  A passphrase file that other users can read is used, with a warning
    that says how to fix it.  (``klero node`` also takes ``$KLERO_PASSPHRASE`` out of its
    environment, so the signature workers it starts do not inherit it.)"""
    _hold_secrets()
    if passphrase_file:
        try:
            text = Path(passphrase_file).read_text(encoding="utf-8")
            loose = os.name == "posix" and Path(passphrase_file).stat().st_mode & 0o077
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"Cannot read the passphrase file {passphrase_file}: {exc.strerror or exc}.") from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise ProfileError(f"The passphrase file {passphrase_file} is empty.")
        if loose:
            import sys

            print(f"Warning: other users can read the passphrase file {passphrase_file}; make it yours alone with "
                  f"`chmod 600 {passphrase_file}`.", file=sys.stderr)
        return lines[0]
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    import sys

    if not sys.stdin.isatty():
        raise ProfileError(f"No passphrase given: use --passphrase-file FILE or set {PASSPHRASE_ENV}.")
    import getpass

    first = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise ProfileError("The two passphrases differ; nothing was created.")
    return first
