"""The one part of the package's layout that pyproject.toml cannot say: the shipped themes and playbooks.

``themes/`` and ``playbooks/`` stay at the top of the repository, their single source. The build maps them
into the wheel as data of ``console.shipped`` (``console/shipped/themes``, ``console/shipped/playbooks``), so
an installed ``rewind`` finds them with no checkout (``console.paths.shipped_dir``). A ``package_dir`` mapping
needs an explicit package list, which ``[tool.setuptools.packages.find]`` cannot be combined with: the
packages are found here instead. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

SHIPPED = {"console.shipped.themes": "themes", "console.shipped.playbooks": "playbooks"}

setup(
    packages=[*find_packages(include=["console", "console.*"]), *SHIPPED],
    package_dir=SHIPPED,
)
