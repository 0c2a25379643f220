"""Placeholder CLI; replaced by the cli package."""


def main() -> None:
    raise SystemExit(0)
