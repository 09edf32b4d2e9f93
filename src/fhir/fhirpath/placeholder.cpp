// Replaced as the module lands.
