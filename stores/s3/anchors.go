package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/erasure-project/erasure/stores"
)

// AnchorPrefix is where anchors live in their bucket.
const AnchorPrefix = "audit-anchors/"

// AnchorsConfig says where audit anchors are kept in S3.
type AnchorsConfig struct {
	Bucket string
	// Retention locks each anchor for this long in Mode (COMPLIANCE, which
	// no one can shorten, or GOVERNANCE); the bucket must have been created
	// with object lock. Zero writes no lock: then only the If-None-Match
	// write and the bucket's versioning keep anchors from being replaced.
	Retention time.Duration
	Mode      string
}

// Anchors keeps audit anchors in S3, one object per anchor, keyed by seq.
type Anchors struct {
	client *s3.Client
	cfg    AnchorsConfig
}

var _ stores.Anchors = (*Anchors)(nil)

// NewAnchors returns the anchors kept in cfg.Bucket. It does not contact
// the server.
func NewAnchors(ctx context.Context, s3cfg Config, cfg AnchorsConfig) (*Anchors, error) {
	if err := stores.CheckBucket(cfg.Bucket); err != nil {
		return nil, err
	}
	if cfg.Mode == "" {
		cfg.Mode = string(types.ObjectLockModeCompliance)
	}
	cfg.Mode = strings.ToUpper(cfg.Mode)
	if cfg.Mode != string(types.ObjectLockModeCompliance) && cfg.Mode != string(types.ObjectLockModeGovernance) {
		return nil, stores.Permanent(fmt.Errorf("anchors: s3: retention mode %q: want COMPLIANCE or GOVERNANCE", cfg.Mode))
	}
	o, err := New(ctx, s3cfg)
	if err != nil {
		return nil, err
	}
	return &Anchors{client: o.client, cfg: cfg}, nil
}

func anchorKey(seq int64) string { return fmt.Sprintf("%s%020d.json", AnchorPrefix, seq) }

// Append writes a as a new object that must not exist yet. An anchor of
// the same seq and hash already there (a retried append) is success; one
// with another hash is an error, and is left as it is.
func (a *Anchors) Append(ctx context.Context, an stores.Anchor) error {
	body, err := json.Marshal(an)
	if err != nil {
		return stores.Permanent(fmt.Errorf("anchors: encode: %w", err))
	}
	in := &s3.PutObjectInput{
		Bucket:      aws.String(a.cfg.Bucket),
		Key:         aws.String(anchorKey(an.Seq)),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
		IfNoneMatch: aws.String("*"),
		// Object lock requires an integrity checksum on the upload.
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	}
	if a.cfg.Retention > 0 {
		in.ObjectLockMode = types.ObjectLockMode(a.cfg.Mode)
		in.ObjectLockRetainUntilDate = aws.Time(time.Now().Add(a.cfg.Retention))
	}
	_, err = a.client.PutObject(ctx, in)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "PreconditionFailed" || apiErr.ErrorCode() == "ConditionalRequestConflict") {
		prior, gerr := a.get(ctx, anchorKey(an.Seq), "")
		if gerr != nil {
			return gerr
		}
		if prior.Seq == an.Seq && prior.Hash == an.Hash {
			return nil
		}
		return stores.Permanent(fmt.Errorf("anchors: an anchor of seq %d with another hash exists", an.Seq))
	}
	return s3Err("anchors: put", err)
}

// List reads every version of every anchor object, lowest seq first: a
// version written over an anchor is returned too, so the verifier sees it.
func (a *Anchors) List(ctx context.Context) ([]stores.Anchor, error) {
	var out []stores.Anchor
	p := s3.NewListObjectVersionsPaginator(a.client, &s3.ListObjectVersionsInput{
		Bucket: aws.String(a.cfg.Bucket), Prefix: aws.String(AnchorPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Err("anchors: list", err)
		}
		for _, v := range page.Versions {
			an, err := a.get(ctx, aws.ToString(v.Key), aws.ToString(v.VersionId))
			if err != nil {
				return nil, err
			}
			out = append(out, an)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (a *Anchors) get(ctx context.Context, key, version string) (stores.Anchor, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key)}
	if version != "" && version != "null" {
		in.VersionId = aws.String(version)
	}
	res, err := a.client.GetObject(ctx, in)
	if err != nil {
		return stores.Anchor{}, s3Err("anchors: get", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if err != nil {
		return stores.Anchor{}, s3Err("anchors: get", err)
	}
	var an stores.Anchor
	if err := json.Unmarshal(raw, &an); err != nil {
		return stores.Anchor{}, stores.Permanent(errors.New("anchors: an anchor object does not parse"))
	}
	return an, nil
}
