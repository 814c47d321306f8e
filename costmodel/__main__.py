from costmodel.cli.main import main

main()
