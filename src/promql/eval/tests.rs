//! Unit tests built from hand-made ASTs (the conformance scripts cover the
//! rest through the parser).
