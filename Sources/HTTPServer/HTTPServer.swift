// Placeholder until the HTTPServer layer lands.
