"""A normal (non-editable) install: the wheel carries every sub-package of zoo, and each imports from it."""
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def package_modules(root: Path) -> list[str]:
    """Every module of the zoo package in a source tree or an unpacked wheel, as dotted names."""
    return sorted(".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
                  for p in (root / "zoo").rglob("*.py"))


def test_the_wheel_holds_and_imports_every_module(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("kdbench-*.whl")
    target = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(target)
    expected = package_modules(REPO)
    assert package_modules(target) == expected, "the wheel lacks modules of the checkout"
    # -S: no site processing, so the checkout's editable install (a .pth finder) cannot answer the imports;
    # the interpreter's site-packages (torch, numpy, ...) is appended after the unpacked wheel.
    check = ("import importlib, sys\n"
             f"sys.path[:0] = [{str(target)!r}]; sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
             f"for name in {expected!r}:\n"
             "    module = importlib.import_module(name)\n"
             f"    assert module.__file__.startswith({str(target)!r}), (name, module.__file__)\n")
    subprocess.run([sys.executable, "-S", "-c", check], check=True, cwd=tmp_path)
