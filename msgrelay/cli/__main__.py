"""`python -m msgrelay.cli`: the same command as the `msgrelay` console script."""
from msgrelay.cli.commands import main

main()
