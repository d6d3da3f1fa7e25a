package stores

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// The hash chain alone proves only that entries fit together: whoever can
// write the ledger can rewrite all of them consistently, and removing the
// newest entries leaves a valid, shorter chain. So each entry is signed by
// the process that appends it, and the chain head is copied now and then,
// signed, to write-once storage (an Anchor) that the ledger's writer cannot
// rewrite.
//
// Entries and anchors are signed with the receipt key, under distinct
// prefixes so that a signature made for one purpose never verifies as
// another (the key also signs receipts).
const (
	auditSigPrefix  = "erasure audit entry v1\n"
	anchorSigPrefix = "erasure audit anchor v1\n"
)

// SignAudit sets e's signature over its hash; with no key it leaves the
// entry unsigned.
func SignAudit(e *AuditEntry, key ed25519.PrivateKey) {
	if len(key) == 0 {
		return
	}
	e.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, []byte(auditSigPrefix+e.Hash)))
}

// VerifyAuditSignature checks a signed entry's signature against its hash.
func VerifyAuditSignature(e AuditEntry, pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, []byte(auditSigPrefix+e.Hash), sig) {
		return Permanent(fmt.Errorf("audit chain broken at seq %d: signature does not verify", e.Seq))
	}
	return nil
}

// Anchor is a signed copy of the chain head at one moment, kept in
// write-once storage: a later log that lacks seq, or holds another hash
// there, was truncated or rewritten.
type Anchor struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"`
}

// Anchors is write-once storage for anchors.
type Anchors interface {
	// Append stores a; an anchor is never replaced.
	Append(ctx context.Context, a Anchor) error
	// List returns every stored anchor, lowest seq first.
	List(ctx context.Context) ([]Anchor, error)
}

func anchorMessage(a Anchor) []byte {
	return []byte(anchorSigPrefix + strconv.FormatInt(a.Seq, 10) + "\n" + a.Hash + "\n" + a.Time.UTC().Format(time.RFC3339Nano))
}

// NewAnchor is the signed anchor of the entry (seq, hash) at t.
func NewAnchor(seq int64, hash string, t time.Time, key ed25519.PrivateKey) Anchor {
	a := Anchor{Seq: seq, Hash: hash, Time: t.UTC()}
	a.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, anchorMessage(a)))
	return a
}

// VerifyAnchor checks an anchor's signature.
func VerifyAnchor(a Anchor, pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, anchorMessage(a), sig) {
		return Permanent(fmt.Errorf("audit anchor at seq %d: signature does not verify", a.Seq))
	}
	return nil
}

// AuditReport is what a verification of the whole log found.
type AuditReport struct {
	Entries  int64 // entries verified before the first problem
	Signed   int64
	Unsigned int64 // entries written without a key (before signing existed)
	Anchors  int   // anchors checked
	HeadSeq  int64
	HeadHash string
}

// AuditVerifier checks a log entry by entry, in seq order: the links, the
// signatures and, at the end, the anchors. With no public key, signed
// entries and anchors cannot be checked and are a failure.
type AuditVerifier struct {
	Public ed25519.PublicKey
	// SkipSignatures checks links and hashes only, for a ledger opened
	// without the key (VerifyChain there).
	SkipSignatures bool
	Report         AuditReport

	anchorAt map[int64]string // hashes of the entries at anchored seqs, kept as they pass
}

// Expect names the anchors CheckAnchors will check, so that Add keeps the
// hashes at their seqs only, not the whole log's.
func (v *AuditVerifier) Expect(anchors []Anchor) {
	v.anchorAt = map[int64]string{}
	for _, a := range anchors {
		v.anchorAt[a.Seq] = ""
	}
}

// Add checks the next entry.
func (v *AuditVerifier) Add(e AuditEntry) error {
	if err := VerifyAuditLink(e, v.Report.Entries, v.Report.HeadHash); err != nil {
		return err
	}
	if e.Signature == "" {
		// Entries before the first signed one are from before signing;
		// an unsigned one after it had its signature stripped.
		if v.Report.Signed > 0 {
			return Permanent(fmt.Errorf("audit chain broken at seq %d: unsigned entry after signed entries", e.Seq))
		}
		v.Report.Unsigned++
	} else {
		if !v.SkipSignatures {
			if err := VerifyAuditSignature(e, v.Public); err != nil {
				return err
			}
		}
		v.Report.Signed++
	}
	v.Report.Entries++
	v.Report.HeadSeq, v.Report.HeadHash = e.Seq, e.Hash
	if _, ok := v.anchorAt[e.Seq]; ok {
		v.anchorAt[e.Seq] = e.Hash
	}
	return nil
}

// CheckAnchors checks, after the last entry, that every anchor is signed
// and names an entry of the log with the same hash; it reports the lowest
// seq in trouble.
func (v *AuditVerifier) CheckAnchors(anchors []Anchor) error {
	sort.SliceStable(anchors, func(i, j int) bool { return anchors[i].Seq < anchors[j].Seq })
	for _, a := range anchors {
		if err := VerifyAnchor(a, v.Public); err != nil {
			return err
		}
		if a.Seq > v.Report.HeadSeq {
			return Permanent(fmt.Errorf("audit chain truncated at seq %d: an anchor names seq %d, the log ends at seq %d",
				v.Report.HeadSeq+1, a.Seq, v.Report.HeadSeq))
		}
		if h, ok := v.anchorAt[a.Seq]; !ok || h != a.Hash {
			return Permanent(fmt.Errorf("audit chain broken at seq %d: the anchored hash differs from the entry's", a.Seq))
		}
		v.Report.Anchors++
	}
	return nil
}

// AuditScanner walks a ledger's audit log in seq order. Both ledgers
// implement it.
type AuditScanner interface {
	ScanAudit(ctx context.Context, fn func(AuditEntry) error) error
}

// VerifyAudit verifies a whole log and its anchors (anchors may be nil).
// The report counts what verified before the first problem, which the
// error names by seq.
func VerifyAudit(ctx context.Context, s AuditScanner, pub ed25519.PublicKey, anchors []Anchor) (AuditReport, error) {
	v := &AuditVerifier{Public: pub}
	v.Expect(anchors)
	if err := s.ScanAudit(ctx, v.Add); err != nil {
		return v.Report, err
	}
	return v.Report, v.CheckAnchors(anchors)
}

// VerifyChainWith walks a ledger's log with scan and returns how many
// entries verified before the first broken link, which it reports by seq;
// with the ledger's audit key, signed entries' signatures are checked too.
// Both ledgers' VerifyChain are this over their ScanAudit.
func VerifyChainWith(ctx context.Context, key ed25519.PrivateKey, scan func(context.Context, func(AuditEntry) error) error) (int64, error) {
	var pub ed25519.PublicKey
	if key != nil {
		pub = key.Public().(ed25519.PublicKey)
	}
	v := &AuditVerifier{Public: pub, SkipSignatures: pub == nil}
	err := scan(ctx, v.Add)
	return v.Report.Entries, err
}
