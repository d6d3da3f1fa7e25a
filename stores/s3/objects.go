package s3

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/erasure-project/erasure/stores"
	"golang.org/x/sync/errgroup"
)

// Config says how to reach S3 or an S3-compatible server.
type Config struct {
	// Endpoint is the base URL of an S3-compatible server; empty means AWS.
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	// PathStyle addresses buckets as endpoint/bucket/key rather than as
	// bucket.endpoint/key (MinIO and most self-hosted servers need it).
	PathStyle bool `yaml:"path_style"`
	// AccessKey and SecretKey are static credentials; both empty means the
	// standard AWS credential chain (environment, shared files, IAM role).
	// The secret never comes from a file: ERASURE_S3_SECRET_KEY.
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"-"`
}

// Objects is the production object store. Buckets are versioned, so
// deleting an object means deleting every version and delete marker of its
// key: a plain DeleteObject would only hide the content behind a marker.
type Objects struct {
	client *s3.Client
	region string
	// listPage caps the entries of one ListObjectVersions page; 0 means
	// the server's default (1,000).
	listPage int32
}

var _ stores.Objects = (*Objects)(nil)

const (
	// s3PartSize is the size of the first parts of a multipart upload and
	// the most a single PutObject sends; bodies up to it are buffered whole,
	// larger ones are streamed one part at a time.
	s3PartSize = 8 << 20
	// s3MaxPartSize caps the part size, which doubles every
	// s3PartsPerStep parts so an upload of unknown length stays within S3's
	// 10,000 parts (about 870 GiB in all) while holding one part in memory.
	s3MaxPartSize  = 128 << 20
	s3PartsPerStep = 1000
	s3MaxParts     = 10000
	// s3DeleteBatch is the most keys one DeleteObjects call accepts.
	s3DeleteBatch = 1000
	// s3DeleteParallel bounds the listings and the DeleteObjects calls one
	// Delete has in flight: measured on MinIO, 4 calls at once delete about
	// twice as fast as one.
	s3DeleteParallel = 4
	// s3AbortTimeout bounds the clean-up of a failed multipart upload.
	s3AbortTimeout = 30 * time.Second
)

// New returns an S3 object store. It does not contact the server.
func New(ctx context.Context, cfg Config) (*Objects, error) {
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, stores.Permanent(errors.New("objects: s3: access key and secret key must be set together"))
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, stores.Permanent(errors.New("objects: s3: endpoint must be an http or https URL"))
		}
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, stores.Permanent(fmt.Errorf("objects: s3: load AWS config: %w", err))
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, stores.Permanent(errors.New("objects: s3: no region configured"))
		}
		awsCfg.Region = "us-east-1" // what S3-compatible servers expect by default
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Multipart objects carry a checksum of their parts' checksums,
		// which a whole-object read cannot verify; do not warn about it.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Objects{client: client, region: awsCfg.Region}, nil
}

// checkS3Key rejects keys S3 cannot store or that would make an exact-key
// operation meaningless. Unlike on disk, "a", "a/b" and "a//b" are all
// distinct, ordinary keys.
func checkS3Key(key string) error {
	switch {
	case key == "":
		return stores.Permanent(errors.New("objects: empty key"))
	case len(key) > 1024:
		return stores.Permanent(errors.New("objects: key longer than 1024 bytes"))
	case !utf8.ValidString(key):
		return stores.Permanent(errors.New("objects: key is not valid UTF-8"))
	}
	return nil
}

func checkS3Object(bucket, key string) error {
	if err := stores.CheckBucket(bucket); err != nil {
		return err
	}
	return checkS3Key(key)
}

// s3Err classifies an S3 client error. Messages carry the operation and the
// server's error code but never the request URL, which contains the key.
func s3Err(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		status := 0
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		wrapped := fmt.Errorf("%s: %s (HTTP %d): %w", op, apiErr.ErrorCode(), status, apiErr)
		if s3Retryable(apiErr.ErrorCode(), status) {
			return stores.Retryable(wrapped)
		}
		return stores.Permanent(wrapped)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		// A response without a parseable S3 error body (a proxy page, say).
		wrapped := fmt.Errorf("%s: HTTP %d: %w", op, re.HTTPStatusCode(), re.Err)
		if s3Retryable("", re.HTTPStatusCode()) {
			return stores.Retryable(wrapped)
		}
		return stores.Permanent(wrapped)
	}
	// No response at all: connection refused or reset, DNS, TLS handshake
	// timeouts. Drop the *url.Error layer, whose text holds the URL.
	var ue *url.Error
	if errors.As(err, &ue) {
		return stores.Retryable(fmt.Errorf("%s: %s: %w", op, ue.Op, ue.Err))
	}
	return stores.Retryable(fmt.Errorf("%s: %w", op, err))
}

func s3Retryable(code string, status int) bool {
	switch code {
	case "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled",
		"RequestLimitExceeded", "TooManyRequestsException", "RequestTimeout",
		"RequestTimeoutException", "InternalError", "ServiceUnavailable",
		"XMinioServerNotInitialized", "XMinioReadQuorum", "XMinioWriteQuorum":
		return true
	}
	return status == 0 || status == 429 || status >= 500
}

// s3Code is the S3 error code of err, or "".
func s3Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// EnsureBucket creates the bucket if it is missing and turns versioning on.
func (o *Objects) EnsureBucket(ctx context.Context, bucket string) error {
	if err := stores.CheckBucket(bucket); err != nil {
		return err
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if o.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(o.region),
		}
	}
	if _, err := o.client.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return s3Err("objects: create bucket", err)
		}
	}
	_, err := o.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	return s3Err("objects: enable versioning", err)
}

// Put streams body in as the new current version of key.
func (o *Objects) Put(ctx context.Context, bucket, key string, body io.Reader) error {
	if err := checkS3Object(bucket, key); err != nil {
		return err
	}
	_, err := o.upload(ctx, "objects: put", bucket, key, "", body)
	return err
}

// Replace streams body in as the new content of key, then deletes every
// other version and delete marker of key, so only the new content remains.
func (o *Objects) Replace(ctx context.Context, bucket, key string, body io.Reader) error {
	if err := checkS3Object(bucket, key); err != nil {
		return err
	}
	versionID, err := o.upload(ctx, "objects: replace", bucket, key, "", body)
	if err != nil {
		return err
	}
	if versionID == "" {
		versionID = "null" // an unversioned bucket: the overwrite was the erasure
	}
	return o.deleteVersions(ctx, "objects: replace", bucket, key, versionID)
}

// upload sends body with one PutObject if it fits in a part and as a
// multipart upload otherwise, holding at most one part in memory. It returns
// the version ID of the new object. A non-empty ifMatch makes the write
// conditional on the current version's ETag.
func (o *Objects) upload(ctx context.Context, op, bucket, key, ifMatch string, body io.Reader) (string, error) {
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, body, s3PartSize+1)
	if err != nil && err != io.EOF {
		return "", readErr(ctx, op, err)
	}
	if n <= s3PartSize {
		out, err := o.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			Body:          bytes.NewReader(buf.Bytes()),
			ContentLength: aws.Int64(n),
			IfMatch:       optString(ifMatch),
		})
		if err != nil {
			return "", s3Err(op, err)
		}
		return aws.ToString(out.VersionId), nil
	}
	return o.multipart(ctx, op, bucket, key, ifMatch, &buf, body)
}

func readErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	// The body is the caller's; a failing reader is not a storage fault.
	return stores.Permanent(fmt.Errorf("%s: read body: %w", op, err))
}

// multipart uploads head (the first bytes already read, more than a part)
// followed by the rest of body, and aborts the upload on any failure so no
// orphaned parts keep the content.
func (o *Objects) multipart(ctx context.Context, op, bucket, key, ifMatch string, head *bytes.Buffer, body io.Reader) (versionID string, err error) {
	created, err := o.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(bucket),
		Key:               aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return "", s3Err(op, err)
	}
	uploadID := created.UploadId
	defer func() {
		if err != nil {
			// Abort even when ctx is done, or the parts stay stored.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3AbortTimeout)
			defer cancel()
			_, _ = o.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: aws.String(key), UploadId: uploadID,
			})
		}
	}()

	// The first part is exactly s3PartSize; head holds one byte more.
	rest := io.MultiReader(bytes.NewReader(head.Bytes()[s3PartSize:]), body)
	part := head.Bytes()[:s3PartSize]
	buf := make([]byte, 0, s3PartSize)
	var parts []types.CompletedPart
	for num := int32(1); ; num++ {
		out, err := o.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:            aws.String(bucket),
			Key:               aws.String(key),
			UploadId:          uploadID,
			PartNumber:        aws.Int32(num),
			Body:              bytes.NewReader(part),
			ContentLength:     aws.Int64(int64(len(part))),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return "", s3Err(op, err)
		}
		parts = append(parts, types.CompletedPart{
			PartNumber:    aws.Int32(num),
			ETag:          out.ETag,
			ChecksumCRC32: out.ChecksumCRC32,
		})
		size := min(s3PartSize<<(int(num)/s3PartsPerStep), s3MaxPartSize)
		if cap(buf) < size {
			buf = make([]byte, 0, size)
		}
		got, rerr := io.ReadFull(rest, buf[:size])
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return "", readErr(ctx, op, rerr)
		}
		if got == 0 {
			break
		}
		if int(num) >= s3MaxParts {
			return "", stores.Permanent(fmt.Errorf("%s: body too large for a multipart upload", op))
		}
		part = buf[:got]
	}
	done, err := o.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bucket),
		Key:             aws.String(key),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		// The condition is checked when the upload completes, so a write
		// that raced the parts' upload is still caught.
		IfMatch: optString(ifMatch),
	})
	if err != nil {
		return "", s3Err(op, err)
	}
	return aws.ToString(done.VersionId), nil
}

// Get opens the current version of key, or returns ErrNotFound when there is
// none or it is a delete marker.
func (o *Objects) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	if err := checkS3Object(bucket, key); err != nil {
		return nil, err
	}
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) || s3Code(err) == "NoSuchKey" {
			return nil, fmt.Errorf("objects: get: %w", stores.ErrNotFound)
		}
		return nil, s3Err("objects: get", err)
	}
	if aws.ToBool(out.DeleteMarker) {
		out.Body.Close()
		return nil, fmt.Errorf("objects: get: %w", stores.ErrNotFound)
	}
	return out.Body, nil
}

// s3Entry is one version or delete marker.
type s3Entry struct {
	key, versionID string
	etag           string
	latest, marker bool
}

// scan walks every version and delete marker under prefix in key order,
// page by page, until fn returns stop or an error.
func (o *Objects) scan(ctx context.Context, op, bucket, prefix string, fn func(e s3Entry) (stop bool, err error)) error {
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	for {
		page, err := o.client.ListObjectVersions(ctx, in)
		if err != nil {
			return s3Err(op, err)
		}
		// The response holds versions and delete markers in two lists, each
		// in key order; merge them back into one.
		entries := make([]s3Entry, 0, len(page.Versions)+len(page.DeleteMarkers))
		for _, v := range page.Versions {
			entries = append(entries, s3Entry{key: aws.ToString(v.Key), versionID: aws.ToString(v.VersionId),
				etag: aws.ToString(v.ETag), latest: aws.ToBool(v.IsLatest)})
		}
		for _, m := range page.DeleteMarkers {
			entries = append(entries, s3Entry{key: aws.ToString(m.Key), versionID: aws.ToString(m.VersionId),
				latest: aws.ToBool(m.IsLatest), marker: true})
		}
		slices.SortStableFunc(entries, func(a, b s3Entry) int { return cmp.Compare(a.key, b.key) })
		for _, e := range entries {
			if stop, err := fn(e); stop || err != nil {
				return err
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		if page.NextKeyMarker == nil && page.NextVersionIdMarker == nil {
			return stores.Retryable(fmt.Errorf("%s: truncated listing without a continuation marker", op))
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}

// checkListPrefix rejects a prefix no S3 key could start with.
func checkListPrefix(prefix string) error {
	if !utf8.ValidString(prefix) || len(prefix) > 1024 {
		return stores.Permanent(errors.New("objects: invalid list prefix"))
	}
	return nil
}

// List calls fn once for every key under prefix that has any version or
// delete marker, in key order.
func (o *Objects) List(ctx context.Context, bucket, prefix string, fn func(key string) error) error {
	if err := stores.CheckBucket(bucket); err != nil {
		return err
	}
	if err := checkListPrefix(prefix); err != nil {
		return err
	}
	last, started := "", false
	return o.scan(ctx, "objects: list", bucket, prefix, func(e s3Entry) (bool, error) {
		if started && e.key == last {
			return false, nil
		}
		last, started = e.key, true
		return false, fn(e.key)
	})
}

// ListEachVersion calls fn for every version and delete marker under
// prefix, in key order, with its version ID: what DeleteListed then removes
// without listing the keys again.
func (o *Objects) ListEachVersion(ctx context.Context, bucket, prefix string, fn func(key, versionID string) error) error {
	if err := stores.CheckBucket(bucket); err != nil {
		return err
	}
	if err := checkListPrefix(prefix); err != nil {
		return err
	}
	return o.scan(ctx, "objects: list versions", bucket, prefix, func(e s3Entry) (bool, error) {
		return false, fn(e.key, e.versionID)
	})
}

// DeleteListed permanently deletes exactly the given versions of each key
// (key to version IDs, as ListEachVersion reported them), up to 1,000 per
// DeleteObjects call, a few calls at a time; a version already gone is
// skipped. Every key is checked before anything is deleted. A version
// written after the listing is not among them and stays.
func (o *Objects) DeleteListed(ctx context.Context, bucket string, versions map[string][]string) error {
	if err := stores.CheckBucket(bucket); err != nil {
		return err
	}
	var objs []types.ObjectIdentifier
	for _, k := range slices.Sorted(maps.Keys(versions)) {
		if err := checkS3Key(k); err != nil {
			return err
		}
		for _, id := range stores.UniqueKeys(versions[k]) {
			objs = append(objs, types.ObjectIdentifier{Key: aws.String(k), VersionId: aws.String(id)})
		}
	}
	return o.deleteObjects(ctx, "objects: delete", bucket, objs)
}

// keyVersions returns every version and delete marker of exactly key. A key
// sorts before every longer key it is a prefix of, so the scan stops at the
// first other key.
func (o *Objects) keyVersions(ctx context.Context, op, bucket, key string) ([]string, error) {
	var ids []string
	err := o.scan(ctx, op, bucket, key, func(e s3Entry) (bool, error) {
		if e.key != key {
			return true, nil
		}
		ids = append(ids, e.versionID)
		return false, nil
	})
	return ids, err
}

// Versions counts the versions and delete markers of key.
func (o *Objects) Versions(ctx context.Context, bucket, key string) (int, error) {
	if err := checkS3Object(bucket, key); err != nil {
		return 0, err
	}
	ids, err := o.keyVersions(ctx, "objects: versions", bucket, key)
	return len(ids), err
}

// Delete removes every version and delete marker of each key; keys with
// nothing stored are fine. Every key is checked before anything is
// deleted. Listing once per key would bound a batch at a few hundred keys
// a second, so keys are listed in groups (see keyGroups and groupVersions),
// a few groups at a time; of what a listing returns only the entries of
// exactly the requested keys are kept, and those are deleted by version ID,
// up to 1,000 per DeleteObjects call.
func (o *Objects) Delete(ctx context.Context, bucket string, keys ...string) error {
	if err := stores.CheckBucket(bucket); err != nil {
		return err
	}
	for _, k := range keys {
		if err := checkS3Key(k); err != nil {
			return err
		}
	}
	groups := keyGroups(keys)
	var (
		mu   sync.Mutex
		objs []types.ObjectIdentifier
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s3DeleteParallel)
	for _, grp := range groups {
		g.Go(func() error {
			found, err := o.groupVersions(gctx, "objects: delete", bucket, grp)
			mu.Lock()
			objs = append(objs, found...)
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return o.deleteObjects(ctx, "objects: delete", bucket, objs)
}

// keyGroup is keys, sorted and distinct, listed together under prefix.
type keyGroup struct {
	prefix string
	keys   []string
}

// keyGroups groups keys by their parent "directory" (up to the last "/"),
// the unit objects are laid out in (a day of recordings, say), and lists
// each group under the longest common prefix of its keys, which is
// narrower than the directory whenever the keys allow. A lone key is its
// own prefix. Empty and repeated keys are dropped.
func keyGroups(keys []string) []keyGroup {
	sorted := stores.UniqueKeys(keys)
	slices.Sort(sorted)
	var groups []keyGroup
	for len(sorted) > 0 {
		dir := parentDir(sorted[0])
		n := 1
		for n < len(sorted) && parentDir(sorted[n]) == dir {
			n++
		}
		ks := sorted[:n:n]
		groups = append(groups, keyGroup{prefix: commonPrefix(ks[0], ks[n-1]), keys: ks})
		sorted = sorted[n:]
	}
	return groups
}

// parentDir is key up to and including its last "/", or "" for none.
func parentDir(key string) string { return key[:strings.LastIndexByte(key, '/')+1] }

// commonPrefix is the longest common prefix of a and b, cut back to a
// whole UTF-8 character. Of sorted keys, the first and the last share the
// prefix all of them share.
func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	for n > 0 && n < len(a) && !utf8.RuneStart(a[n]) {
		n--
	}
	return a[:n]
}

// groupVersions returns the versions and delete markers of exactly the keys
// of grp. It lists the group's prefix page by page and stops past its last
// key. When the prefix holds so much else that the pages listed reach the
// number of keys still to come, those keys are listed one by one instead:
// either way costs at most about twice the cheaper one, without knowing in
// advance what a prefix holds.
func (o *Objects) groupVersions(ctx context.Context, op, bucket string, grp keyGroup) ([]types.ObjectIdentifier, error) {
	want := make(map[string]bool, len(grp.keys))
	for _, k := range grp.keys {
		want[k] = true
	}
	last := grp.keys[len(grp.keys)-1]
	var objs []types.ObjectIdentifier
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(grp.prefix)}
	if o.listPage > 0 {
		in.MaxKeys = aws.Int32(o.listPage)
	}
	for pages := 1; ; pages++ {
		page, err := o.client.ListObjectVersions(ctx, in)
		if err != nil {
			return objs, s3Err(op, err)
		}
		// edge is the greatest key on the page. The page may end inside
		// its versions; keys before it are complete. (NextKeyMarker is no
		// key to compare with: MinIO appends a cache tag to it.)
		edge := ""
		for _, v := range page.Versions {
			k := aws.ToString(v.Key)
			edge = max(edge, k)
			if want[k] {
				objs = append(objs, types.ObjectIdentifier{Key: aws.String(k), VersionId: v.VersionId})
			}
		}
		for _, m := range page.DeleteMarkers {
			k := aws.ToString(m.Key)
			edge = max(edge, k)
			if want[k] {
				objs = append(objs, types.ObjectIdentifier{Key: aws.String(k), VersionId: m.VersionId})
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return objs, nil
		}
		if page.NextKeyMarker == nil && page.NextVersionIdMarker == nil {
			return objs, stores.Retryable(fmt.Errorf("%s: truncated listing without a continuation marker", op))
		}
		if edge > last {
			return objs, nil
		}
		rest := grp.keys[sort.SearchStrings(grp.keys, edge):]
		if pages >= len(rest) {
			objs = slices.DeleteFunc(objs, func(id types.ObjectIdentifier) bool { return aws.ToString(id.Key) >= edge })
			for _, k := range rest {
				ids, err := o.keyVersions(ctx, op, bucket, k)
				if err != nil {
					return objs, err
				}
				for _, id := range ids {
					objs = append(objs, types.ObjectIdentifier{Key: aws.String(k), VersionId: aws.String(id)})
				}
			}
			return objs, nil
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}

// deleteVersions deletes every version and delete marker of key except the
// version keep (none when empty).
func (o *Objects) deleteVersions(ctx context.Context, op, bucket, key, keep string) error {
	ids, err := o.keyVersions(ctx, op, bucket, key)
	if err != nil {
		return err
	}
	objs := make([]types.ObjectIdentifier, 0, len(ids))
	for _, id := range ids {
		if keep != "" && id == keep {
			continue
		}
		objs = append(objs, types.ObjectIdentifier{Key: aws.String(key), VersionId: aws.String(id)})
	}
	return o.deleteObjects(ctx, op, bucket, objs)
}

// deleteObjects deletes specific versions in batches of up to 1,000, a few
// batches at a time, and fails if the server reports any of them not
// deleted.
func (o *Objects) deleteObjects(ctx context.Context, op, bucket string, objs []types.ObjectIdentifier) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s3DeleteParallel)
	for batch := range slices.Chunk(objs, s3DeleteBatch) {
		g.Go(func() error { return o.deleteBatch(gctx, op, bucket, batch) })
	}
	return g.Wait()
}

// deleteBatch is one DeleteObjects call. Quiet mode makes the server
// report only the versions it did not delete, each with an error code.
func (o *Objects) deleteBatch(ctx context.Context, op, bucket string, batch []types.ObjectIdentifier) error {
	out, err := o.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(bucket),
		Delete: &types.Delete{Objects: batch, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return s3Err(op, err)
	}
	retry := false
	codes := make([]string, 0, len(out.Errors))
	for _, e := range out.Errors {
		code := aws.ToString(e.Code)
		if code == "NoSuchVersion" || code == "NoSuchKey" {
			continue // gone already, which is what was asked
		}
		codes = append(codes, code)
		if s3Retryable(code, -1) {
			retry = true
		}
	}
	if len(codes) == 0 {
		return nil
	}
	err = fmt.Errorf("%s: %d of %d versions not deleted: %s", op, len(codes), len(batch), strings.Join(slices.Compact(slices.Sorted(slices.Values(codes))), ", "))
	if retry {
		return stores.Retryable(err)
	}
	return stores.Permanent(err)
}
