// Package pep508 implements PEP 508 dependency specifications: package
// name normalization, environment markers and requirement strings
// (https://peps.python.org/pep-0508/), with the evaluation semantics of
// pypa/packaging's markers.py and uv.
//
// It is used by python/uvlock (and python/pyproject) to evaluate the
// markers found in uv.lock and pyproject.toml against the environment of
// an image: an OCI platform (linux/amd64 or linux/arm64) and a CPython
// version. EnvironmentFor builds that Environment, ParseMarker and
// Marker.Evaluate decide whether a locked package or a dependency edge
// applies to it, and ParseRequirement reads the requirement strings of
// pyproject.toml ("torch>=2.7.1; extra == 'ml'").
//
// Versions and version specifiers come from python/pep440.
package pep508
