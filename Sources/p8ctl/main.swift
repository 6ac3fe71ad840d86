print("p8ctl")
