// Package sdk is the public contract between Zoe's core and its plugins.
//
// A plugin is a separate program that serves exactly one kind — a container
// back-end, an authentication source or a workspace provider — over gRPC with
// hashicorp/go-plugin. Its author implements one of the Go interfaces of the
// packages sdk/backend, sdk/auth or sdk/workspace (each embeds Plugin) and
// calls serve.Serve from main; protobuf never shows. sdk/plugintest runs a
// plugin in-process over real gRPC and holds a conformance suite per kind.
//
// The plain contract (this package and sdk/backend, sdk/auth,
// sdk/workspace) links no RPC library, so the core's pure parts can use its
// types and error categories; the wire lives apart, in sdk/handshake and the
// kinds' *rpc packages (sdk/backend/backendrpc, ...).
//
// The SDK is a Go module of its own, github.com/zoe-project/zoe/sdk, which
// requires go-plugin, gRPC, protobuf, and HCL with cty (for sdk/hclschema),
// and nothing of Zoe's core. Its versions are the repository's tags of the
// form sdk/vX.Y.Z: a plugin runs
//
//	go get github.com/zoe-project/zoe/sdk@latest
//
// The SDK's version is that of the Go API a plugin compiles against; what a
// plugin and a core speak on the wire is the kind's APIVersion, which the
// core checks when it starts the plugin.
//
// This package holds what every kind shares: the Plugin interface, the
// configuration schema a plugin publishes, the diagnostics it returns, and the
// error categories that survive the wire, so that errors.Is(err, ErrNotFound)
// works in the core for an error a plugin returned.
package sdk
