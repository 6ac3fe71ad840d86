print("p8")
