package testutil

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// realNodeDNS is the cluster DNS of a real node's pods, standing in for
// CoreDNS (which the tests do not build): it answers what the Kubernetes
// back-end relies on, the address of a pod of a headless Service's
// subdomain, <hostname>.<subdomain>.<namespace>.svc.cluster.local, read
// from the API server at each query. Every other name is NXDOMAIN: the
// pods reach nothing outside this machine. UDP only, which Go's and
// glibc's resolvers use for such short answers.
type realNodeDNS struct {
	c    *KubeCluster
	conn net.PacketConn
}

// serveDNS listens on addr:53 and answers until close.
func (c *KubeCluster) serveDNS(addr string) (*realNodeDNS, error) {
	conn, err := net.ListenPacket("udp", net.JoinHostPort(addr, "53"))
	if err != nil {
		return nil, err
	}
	d := &realNodeDNS{c: c, conn: conn}
	go d.serve()
	return d, nil
}

func (d *realNodeDNS) close() { _ = d.conn.Close() }

func (d *realNodeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if out := d.answer(buf[:n]); out != nil {
			_, _ = d.conn.WriteTo(out, from)
		}
	}
}

// answer builds the response to one query; nil for what is no query.
func (d *realNodeDNS) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	resp := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired},
		Questions: []dnsmessage.Question{q},
	}
	ip := d.lookup(strings.ToLower(q.Name.String()))
	switch {
	case ip == nil:
		resp.RCode = dnsmessage.RCodeNameError
	case q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL:
		var a [4]byte
		copy(a[:], ip.To4())
		resp.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
			Body:   &dnsmessage.AResource{A: a},
		}}
	default: // the name exists, with no record of that type (AAAA)
	}
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}

// lookup returns the IPv4 address of the pod a name stands for, or nil.
func (d *realNodeDNS) lookup(name string) net.IP {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	// hostname, subdomain, namespace, "svc", "cluster", "local"
	if len(labels) != 6 || strings.Join(labels[3:], ".") != "svc.cluster.local" {
		return nil
	}
	host, sub, ns := labels[0], labels[1], labels[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2e9)
	defer cancel()
	b, code, err := d.c.request(ctx, "GET", "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods", nil)
	if err != nil || code != http.StatusOK {
		return nil
	}
	var pods struct {
		Items []struct {
			Spec struct {
				Hostname  string `json:"hostname"`
				Subdomain string `json:"subdomain"`
			} `json:"spec"`
			Status struct {
				PodIP string `json:"podIP"`
			} `json:"status"`
		} `json:"items"`
	}
	if json.Unmarshal(b, &pods) != nil {
		return nil
	}
	for _, p := range pods.Items {
		if p.Spec.Hostname == host && p.Spec.Subdomain == sub {
			if ip := net.ParseIP(p.Status.PodIP).To4(); ip != nil {
				return ip
			}
		}
	}
	return nil
}
