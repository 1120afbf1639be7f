"""What goes wrong with certificates, said in one line for the CLI and the pages."""


class CertificateError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
