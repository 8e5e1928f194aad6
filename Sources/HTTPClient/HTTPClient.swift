// Placeholder until the HTTPClient layer lands.
