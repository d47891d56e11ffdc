"""Independent interop peers that kstream's tests talk to (see ``peers.gopeer``)."""
