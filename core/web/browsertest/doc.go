// Package browsertest holds the end-to-end tests of Zoe's web pages and
// proxy: a real `zoe server` (the built binary and plugins) on the
// simulated back-end and on the Docker engine, driven by headless Chromium
// as a user without a terminal would use it, and by an HTTP client for the
// proxy's wiring. It has no code of its own.
package browsertest
