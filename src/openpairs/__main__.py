from openpairs.cli import main

main()
