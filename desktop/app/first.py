"""The first start: a key (new, recovered from its 24 words, or restored from a backup), then an
assembly to join (a charter file, or a member's node and the id the organiser published), or the
demo instead.  Every step is the same function the command line calls (``p2p.profile``,
``p2p.founding``), and every refusal is its sentence."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

CREATE, RECOVER, RESTORE, DEMO = "create", "recover", "restore", "demo"


def _named(widget, name: str):
    widget.setAccessibleName(name)
    return widget


class _Page(QWizardPage):
    def __init__(self, wizard: "FirstStart", title: str, text: str = ""):
        super().__init__()
        self.w = wizard
        self.setTitle(title)
        self.box = QVBoxLayout(self)
        if text:
            intro = QLabel(text)
            intro.setWordWrap(True)
            self.box.addWidget(intro)
        self.problem = _named(QLabel(""), "What went wrong")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c62828")

    def finish_layout(self) -> None:
        self.box.addStretch(1)
        self.box.addWidget(self.problem)

    def refuse(self, sentence: str) -> bool:
        self.problem.setText(sentence)
        return False


class WelcomePage(_Page):
    def __init__(self, wizard):
        super().__init__(wizard, "Welcome to Kleroterion",
                         "Your key is who you are in the assembly: it signs everything you do. It stays on this "
                         "machine, sealed by a passphrase.")
        self.choices = {}
        for value, label in ((CREATE, "&Create a new key"), (RECOVER, "&Recover a key from its 24 words"),
                             (RESTORE, "Restore a key from an encrypted &backup file"),
                             (DEMO, "Just &try the demo (a local assembly of bots; nothing leaves this machine)")):
            button = _named(QRadioButton(label), label.replace("&", ""))
            self.choices[value] = button
            self.box.addWidget(button)
        self.choices[CREATE].setChecked(True)
        self.finish_layout()

    def choice(self) -> str:
        return next(v for v, b in self.choices.items() if b.isChecked())

    def nextId(self) -> int:
        return -1 if self.choice() == DEMO else FirstStart.KEY

    def validatePage(self) -> bool:
        self.w.choice = self.choice()
        return True


class KeyPage(_Page):
    def __init__(self, wizard):
        super().__init__(wizard, "Your key")
        self.words = _named(QPlainTextEdit(), "Recovery words")
        self.words.setPlaceholderText("Your 24 recovery words, in order")
        self.file = _named(QLineEdit(), "Backup file")
        browse = _named(QPushButton("Choose…"), "Choose the backup file")
        browse.clicked.connect(lambda: self.file.setText(QFileDialog.getOpenFileName(self, "Backup of your key")[0]
                                                         or self.file.text()))
        self.file_row = QHBoxLayout()
        self.file_row.addWidget(self.file)
        self.file_row.addWidget(browse)
        self.passphrase = _named(QLineEdit(), "Passphrase")
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat = _named(QLineEdit(), "Repeat the passphrase")
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        self.box.addWidget(self.words)
        self.box.addLayout(self.file_row)
        self.file_label = QLabel("Backup file:")
        self.box.addWidget(QLabel("Passphrase (at least 8 characters; nobody can recover it for you):"))
        self.box.addWidget(self.passphrase)
        self.repeat_label = QLabel("Repeat it:")
        self.box.addWidget(self.repeat_label)
        self.box.addWidget(self.repeat)
        self.finish_layout()

    def initializePage(self) -> None:
        c = self.w.choice
        self.words.setVisible(c == RECOVER)
        self.file.setVisible(c == RESTORE)
        for k in range(self.file_row.count()):
            self.file_row.itemAt(k).widget().setVisible(c == RESTORE)
        self.repeat.setVisible(c != RESTORE)
        self.repeat_label.setVisible(c != RESTORE)

    def nextId(self) -> int:
        return FirstStart.PHRASE if self.w.choice == CREATE else FirstStart.JOIN

    def validatePage(self) -> bool:
        from consensus.errors import KleroError
        from p2p import profile

        c, passphrase = self.w.choice, self.passphrase.text()
        if c != RESTORE and passphrase != self.repeat.text():
            return self.refuse("The two passphrases differ; type the same one twice.")
        try:
            if c == RESTORE:
                self.w.profile, _ = profile.restore(self.w.name, self.file.text(), passphrase)
            else:
                seed = profile.seed_from_phrase(self.words.toPlainText()) if c == RECOVER else None
                self.w.profile, _ = profile.create(self.w.name, passphrase, kdf=self.w.kdf, seed=seed)
            self.w.passphrase = passphrase
            self.w.key = profile.unlock(self.w.profile, passphrase)
        except KleroError as exc:
            return self.refuse(exc.message)
        return True


class PhrasePage(_Page):
    def __init__(self, wizard):
        super().__init__(wizard, "Your recovery words",
                         "These 24 words recreate your key if this machine is lost. Anyone who reads them holds your "
                         "key: write them on paper, in order, and keep them offline.")
        self.grid = QGridLayout()
        self.box.addLayout(self.grid)
        self.cells: list[QLabel] = []
        self.done = _named(QCheckBox("I wrote the 24 words down, in order"), "I wrote the words down")
        self.done.toggled.connect(self.completeChanged)
        self.box.addWidget(self.done)
        save = _named(QPushButton("Also save an encrypted &backup file…"), "Save an encrypted backup")
        save.clicked.connect(self._backup)
        self.box.addWidget(save)
        self.finish_layout()

    def initializePage(self) -> None:
        from p2p import profile

        words = profile.recovery_phrase(self.w.key).split()
        self.w.words = words
        for n, word in enumerate(words):
            cell = _named(QLabel(f"{n + 1}. {word}"), f"Word {n + 1}")
            self.cells.append(cell)
            self.grid.addWidget(cell, n // 4, n % 4)

    def isComplete(self) -> bool:
        return self.done.isChecked()

    def _backup(self) -> None:
        from p2p import profile

        path, _ = QFileDialog.getSaveFileName(self, "Save an encrypted backup of your key", f"{self.w.name}.key")
        if path:
            profile.backup(self.w.profile, path)
            self.problem.setStyleSheet("")
            self.problem.setText(f"Saved to {path}; it needs your passphrase to restore.")

    def nextId(self) -> int:
        return FirstStart.JOIN


class JoinPage(_Page):
    def __init__(self, wizard):
        super().__init__(wizard, "Join your assembly",
                         "Your organiser sent a charter file and published the assembly's id. Choose the file, or give a "
                         "member's node address instead; give the id to be sure it is the right assembly.")
        row = QHBoxLayout()
        self.charter = _named(QLineEdit(), "Charter file")
        self.charter.setPlaceholderText("charter.log")
        browse = _named(QPushButton("Choose…"), "Choose the charter file")
        browse.clicked.connect(lambda: self.charter.setText(QFileDialog.getOpenFileName(self, "The charter")[0]
                                                            or self.charter.text()))
        row.addWidget(self.charter)
        row.addWidget(browse)
        self.box.addLayout(row)
        self.address = _named(QLineEdit(), "A member's node address")
        self.address.setPlaceholderText("or /ip4/…/tcp/…/p2p/… of a member's node")
        self.box.addWidget(self.address)
        self.assembly = _named(QLineEdit(), "The assembly's id")
        self.assembly.setPlaceholderText("the assembly id your organiser published (needed with an address)")
        self.box.addWidget(self.assembly)
        self.finish_layout()

    def validatePage(self) -> bool:
        from consensus.errors import KleroError
        from p2p import founding

        charter, address, assembly = self.charter.text().strip(), self.address.text().strip(), self.assembly.text().strip()
        if not charter and not address:
            return self.refuse("Choose the charter file, or give a member's node address.")
        if address and not charter and not assembly:
            return self.refuse("With a node's address, give the assembly id your organiser published: a node could "
                               "send any assembly's charter.")
        try:
            wire = founding.charter_from(charter) if charter else founding.charter_from(address, fetch=True)
            self.w.joined = founding.join(self.w.profile, wire, assembly=assembly or None,
                                          bootstrap=(address,) if address else ())
        except KleroError as exc:
            return self.refuse(exc.message)
        return True


class FirstStart(QWizard):
    """``choice`` after it ran: create/recover/restore (then ``profile`` exists and, unless the
    person cancelled at the last page, has joined) or demo."""

    WELCOME, KEY, PHRASE, JOIN = range(4)

    def __init__(self, name: str, *, existing=None, kdf: str = "moderate"):
        super().__init__()
        self.setWindowTitle("Kleroterion — first start")
        self.name, self.kdf = name, kdf
        self.choice, self.profile, self.key, self.passphrase, self.joined, self.words = CREATE, existing, None, None, None, []
        self.setPage(self.WELCOME, WelcomePage(self))
        self.setPage(self.KEY, KeyPage(self))
        self.setPage(self.PHRASE, PhrasePage(self))
        self.setPage(self.JOIN, JoinPage(self))
        if existing is not None:  # a key but no assembly yet: straight to joining
            self.setStartId(self.JOIN)
