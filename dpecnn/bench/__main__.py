from dpecnn.bench import main

main()
