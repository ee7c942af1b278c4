"""Finding experiment files: a path as given, or a bare name in ./experiments or the package's."""

from __future__ import annotations

from pathlib import Path

from toysuper.errors import ConfigError


def find(name) -> Path:
    """A path as given, or a bare name looked up in ./experiments and the package's experiments."""
    path = Path(name)
    if path.exists() or path.suffix:
        return path
    for folder in dirs():
        if (folder / f"{name}.toml").exists():
            return folder / f"{name}.toml"
    known = sorted({f.stem for d in dirs() for f in d.glob("*.toml")})
    raise ConfigError(f"experiment '{name}' is neither a file nor one of: {', '.join(known) or 'none'}")


def dirs() -> list[Path]:
    here = Path("experiments")
    repo = Path(__file__).resolve().parent.parent / "experiments"
    return [d for d in dict.fromkeys([here.resolve(), repo]) if d.is_dir()]
