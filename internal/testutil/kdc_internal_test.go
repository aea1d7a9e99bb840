package testutil

import (
	"net"
	"testing"
)

// TestKDCUDPPortTaken: the KDC listens on TCP alone. freePort finds a free
// TCP port; the same number over UDP may be any program's (every UDP
// client, a DNS look-up, gets one of the same range), and a KDC binding
// it too exited at once ("krb5kdc exited", once in a loop of make test).
func TestKDCUDPPortTaken(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, "UDP.TEST")
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	port := udp.LocalAddr().(*net.UDPAddr).Port
	k.writeConf(t, port)
	if err := k.start(t, port); err != nil {
		t.Errorf("a KDC on a TCP port whose UDP twin is taken: %v", err)
	}
}
