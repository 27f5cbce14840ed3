// Package llb is a small set of composable helpers over BuildKit's
// client/llb for building Python application images without a Dockerfile:
// a builder stage (base image, an installer, an empty venv, and a toolchain
// apt layer with locked cache mounts for what must be compiled), package
// layers installed side by side into that empty venv and a project layer,
// each a diff of its own, a runtime stage (an app user and group created first, a few
// apt packages with no lists left behind), the assembly of a runtime image
// from the builder's layers with llb.Diff and llb.Merge so that a layer
// several images contain is one blob, and the image config merged onto the
// base image's.
//
// It knows nothing of any particular application: the images of KTRDR are
// described as data in package variants, which composes these helpers. It
// never talks to a daemon either; image configs are resolved through the
// llb.ImageMetaResolver the caller passes (a gateway client at build time).
//
// Conventions: states are values (llb.State), options are small structs
// with a Validate method, every step that writes files runs as the user who
// will own them (ownership is set where files are made, never by a separate
// chown step), and nothing reads the clock or the process environment: a
// build's timestamps come from the SOURCE_DATE_EPOCH the caller passes.
package llb
