print("fake-salesforce")
