from lambdaserve.cli.main import main

main()
