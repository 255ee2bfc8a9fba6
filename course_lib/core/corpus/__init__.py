"""The voice-command corpus (chapter 1): the grammar of the sentences (`grammar`),
eSpeak NG synthesis in-process (`synth`), acoustic variety (`augment`), and the
deterministic, cached, checksummed corpus built from them (`build`)."""
