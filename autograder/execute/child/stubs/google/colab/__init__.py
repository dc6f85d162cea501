"""Stand-in for Colab's module so that Colab-only lines (``from google.colab import drive``) do nothing here."""


class _Drive:
    @staticmethod
    def mount(*args, **kwargs):
        print("google.colab.drive.mount: not on Colab, nothing mounted")

    @staticmethod
    def flush_and_unmount(*args, **kwargs):
        pass


class _Files:
    @staticmethod
    def upload(*args, **kwargs):
        return {}

    @staticmethod
    def download(*args, **kwargs):
        pass


drive = _Drive()
files = _Files()
output = None
