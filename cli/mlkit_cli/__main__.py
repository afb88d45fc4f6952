from mlkit_cli.main import main

main()
