package openapitest

import "testing"

func TestRoutes(t *testing.T) {
	base := startDaemon(t)
	checkKeptDocument(t, servedDocument(t, base))
}
