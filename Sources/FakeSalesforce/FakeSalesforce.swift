// Placeholder until the FakeSalesforce layer lands.
