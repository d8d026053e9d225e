package rekord

import (
	"bytes"
	"fmt"

	"github.com/signet-dev/signet/types/pgp"
)

// pgpFormat: OpenPGP keys and detached signatures, armored or binary
// (types/pgp, where the deviations from Rekor are written down). An
// armored signature is kept as sent and a binary one armored, as Rekor
// does.
type pgpFormat struct{}

func (pgpFormat) verify(content, sig, key []byte) ([]byte, []byte, []string, error) {
	k, err := pgp.ReadKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("publicKey: %w", err)
	}
	binSig, armored, err := pgp.SignaturePacket(sig)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := k.Verify(bytes.NewReader(content), binSig); err != nil {
		return nil, nil, nil, fmt.Errorf("the signature does not verify over data.content with the given key: %w", err)
	}
	canonSig := sig
	if !armored {
		if canonSig, err = pgp.Armor(pgp.SignatureType, binSig); err != nil {
			return nil, nil, nil, err
		}
	}
	return canonSig, k.Armored, k.Emails, nil
}

func (pgpFormat) canonicalKey(key []byte) ([]byte, error) {
	k, err := pgp.ReadKey(key)
	if err != nil {
		return nil, err
	}
	return k.Armored, nil
}
