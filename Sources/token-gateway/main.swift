print("token-gateway")
