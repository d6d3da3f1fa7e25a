package webapi

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// parseProxies parses the trusted proxies' CIDRs (a bare address is one
// host).
func parseProxies(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR", c)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR", c)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address a request comes from: the socket's peer, or,
// when that peer is a trusted proxy and a proxy header is configured, the
// nearest address in the header that is not a trusted proxy. The header is
// read right to left because each proxy appends the peer it saw; what is
// left of the first untrusted entry was written by the client and proves
// nothing. A header from an untrusted peer is ignored.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if s.cfg.TrustedProxyHeader == "" || !s.trustedProxy(peer) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values(s.cfg.TrustedProxyHeader) {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop at the last address a trusted proxy vouched for
		}
		client = a.Unmap()
		if !s.trustedProxy(client) {
			break
		}
	}
	return client.String()
}
