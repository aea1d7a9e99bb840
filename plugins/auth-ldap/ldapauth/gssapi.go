package ldapauth

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldap/v3/gssapi"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	krbgssapi "github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
)

// gssBind binds as the service account with SASL GSSAPI.
func (s *session) gssBind(ctx context.Context) error {
	s.prepare(ctx)
	s.c.dirty = true
	spn := s.cfg.gss.spn
	if spn == "" {
		spn = "ldap/" + s.c.host
	}
	err := s.c.GSSAPIBind(gssClient{&gssapi.Client{Client: s.pool.krb}}, spn, "")
	switch {
	case err == nil:
		s.c.boundAs, s.c.dirty = s.cfg.serviceID(), false
	case ldap.IsErrorWithCode(err, ldap.ErrorNetwork):
	default:
		// The bind failed before the connection changed hands, or the
		// server refused it: either way the connection is anonymous.
		s.c.boundAs, s.c.dirty = "", false
	}
	return err
}

// gssClient is go-ldap's Kerberos client with the last step of the SASL
// GSSAPI handshake (RFC 4752 3.1) redone: go-ldap v3.4.15 reads the
// server's wrap token as checksum then payload, while RFC 4121 4.2.4 (and
// MIT Kerberos, which slapd uses) puts the payload first, so every bind to
// slapd failed with "checksum mismatch".
type gssClient struct {
	*gssapi.Client
}

// NegotiateSaslAuth checks the server's wrap token (its offer of security
// layers) and answers "no security layer" (TLS protects the connection),
// with authzid.
func (c gssClient) NegotiateSaslAuth(input []byte, authzid string) ([]byte, error) {
	if len(input) < krbgssapi.HdrLen || input[0] != 0x05 || input[1] != 0x04 || input[3] != krbgssapi.FillerByte {
		return nil, errors.New("gssapi: the server's last token is not a wrap token")
	}
	flags := input[2]
	ec := int(binary.BigEndian.Uint16(input[4:6]))
	rrc := binary.BigEndian.Uint16(input[6:8])
	switch {
	case flags&0b001 == 0:
		return nil, errors.New("gssapi: the server's wrap token is not from the acceptor")
	case flags&0b010 != 0:
		return nil, errors.New("gssapi: the server's wrap token is sealed; want a signed one")
	case flags&0b100 == 0 || c.Subkey.KeyValue == nil:
		return nil, errors.New("gssapi: the server's wrap token does not use the acceptor subkey")
	case rrc != 0:
		return nil, fmt.Errorf("gssapi: rotated wrap tokens (RRC %d) are not supported", rrc)
	case len(input) < krbgssapi.HdrLen+ec:
		return nil, errors.New("gssapi: the server's wrap token is too short")
	}
	key := c.Subkey
	token := &krbgssapi.WrapToken{
		Flags:     flags,
		EC:        uint16(ec),
		RRC:       rrc,
		SndSeqNum: binary.BigEndian.Uint64(input[8:16]),
		Payload:   input[krbgssapi.HdrLen : len(input)-ec],
		CheckSum:  input[len(input)-ec:],
	}
	if _, err := token.Verify(key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
		return nil, fmt.Errorf("gssapi: the server's wrap token: %w", err)
	}
	if len(token.Payload) != 4 {
		return nil, errors.New("gssapi: the server's security layer offer is not 4 bytes")
	}
	if token.Payload[0]&0x01 == 0 {
		return nil, errors.New("gssapi: the server requires a security layer; use TLS and let it accept none")
	}
	et, err := krbcrypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	// 0x01: no security layer, a zero buffer size, then the authzid.
	reply := &krbgssapi.WrapToken{
		Flags:     0b100,
		EC:        uint16(et.GetHMACBitLength() / 8),
		SndSeqNum: 1,
		Payload:   append([]byte{0x01, 0, 0, 0}, authzid...),
	}
	if err := reply.SetCheckSum(key, keyusage.GSSAPI_INITIATOR_SEAL); err != nil {
		return nil, err
	}
	return reply.Marshal()
}
