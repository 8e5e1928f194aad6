// Placeholder until the TokenGatewayCore layer lands.
