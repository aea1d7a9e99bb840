// Package handshake is what the core and a plugin check before they talk
// over go-plugin. It is apart from package sdk so that the plain contract
// (error categories, schemas, the kinds' types) links no RPC library.
package handshake

import "github.com/hashicorp/go-plugin"

// ProtocolVersion is the go-plugin protocol version of Zoe's plugins. It
// changes only when the wire breaks; the kinds' own APIVersion constants are
// how the contracts evolve within it.
const ProtocolVersion = 1

// Config is the handshake. The cookie only tells a person who runs a plugin
// binary by hand that it is not a program to run by itself.
func Config() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "ZOE_PLUGIN_MAGIC_COOKIE",
		MagicCookieValue: "7a6f652d706c7567696e2d6b696e64732d6261636b656e642d617574682d77",
	}
}
