package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/erasure-project/erasure/stores"
)

// diskTempDir holds files being written. Bucket names cannot start with a
// dot, so it never collides with a bucket, and List never sees a half-written
// object.
const diskTempDir = ".tmp"

// diskTempGrace is how old a temp file must be before it can count as left
// by a crash mid-write: a writer locks its temp file (see lockTemp) right
// after creating it, and a file this young may be in between.
const diskTempGrace = 10 * time.Second

// Objects is the embedded object store: one directory per bucket under
// root, one file per key, with "/" in a key mapping to subdirectories. There
// is no versioning, so deleting a file is deleting every version.
//
// Unlike S3, a key cannot be both an object and the parent of other objects
// ("a" and "a/b"); writing the second fails with a permanent error.
type Objects struct {
	root string
}

var _ stores.Objects = (*Objects)(nil)

// New returns an object store rooted at root, which is created by
// EnsureBucket.
func New(root string) *Objects {
	return &Objects{root: root}
}

// checkKey rejects keys that could name something outside their bucket or
// that have no file equivalent: empty, absolute, with NUL, backslash, empty
// segments or "." and ".." segments.
func checkKey(key string) error {
	switch {
	case key == "":
		return stores.Permanent(errors.New("objects: empty key"))
	case len(key) > 1024: // S3's limit
		return stores.Permanent(errors.New("objects: key longer than 1024 bytes"))
	case !utf8.ValidString(key):
		return stores.Permanent(errors.New("objects: key is not valid UTF-8"))
	case strings.ContainsAny(key, "\x00\\"):
		return stores.Permanent(errors.New("objects: key contains NUL or backslash"))
	case strings.HasPrefix(key, "/"):
		return stores.Permanent(errors.New("objects: key is an absolute path"))
	}
	return checkSegments(strings.Split(key, "/"))
}

func checkSegments(segs []string) error {
	for _, s := range segs {
		switch {
		case s == "":
			return stores.Permanent(errors.New("objects: key has an empty path segment"))
		case s == "." || s == "..":
			return stores.Permanent(errors.New("objects: key has a relative path segment"))
		case len(s) > 255: // NAME_MAX on common file systems
			return stores.Permanent(errors.New("objects: key segment longer than 255 bytes"))
		}
	}
	return nil
}

func (o *Objects) bucketDir(bucket string) (string, error) {
	if err := stores.CheckBucket(bucket); err != nil {
		return "", err
	}
	return filepath.Join(o.root, bucket), nil
}

// objectPath maps a key to its file. It checks the result lies inside the
// bucket directory as well as validating the key, so a gap in checkKey cannot
// become a path outside the bucket.
func (o *Objects) objectPath(bucket, key string) (dir, path string, err error) {
	dir, err = o.bucketDir(bucket)
	if err != nil {
		return "", "", err
	}
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, filepath.FromSlash(key))
	if !within(dir, path) {
		return "", "", stores.Permanent(errors.New("objects: key resolves outside its bucket"))
	}
	return dir, path, nil
}

// within reports whether path is strictly inside dir.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// requireBucket fails for a bucket that was never created, so a misspelt
// bucket in the data map is an error rather than a successful empty delete.
func requireBucket(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return stores.Permanent(fmt.Errorf("objects: bucket %q does not exist", filepath.Base(dir)))
	}
	return diskErr("objects: bucket", err)
}

// diskErr wraps a file system error without its path: paths contain object
// keys, which do not belong in logs. Permission problems will not fix
// themselves, so they are permanent; the rest (disk full, I/O errors) may.
func diskErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = fmt.Errorf("%s: %s: %w", op, pe.Op, pe.Err)
	case errors.As(err, &le):
		err = fmt.Errorf("%s: %s: %w", op, le.Op, le.Err)
	default:
		err = fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return stores.Permanent(err)
	}
	return err
}

// EnsureBucket creates the bucket directory and clears temp files left by a
// crash. Objects hold personal data: directories are the owner's only, and
// an existing root or bucket directory open to others is tightened.
func (o *Objects) EnsureBucket(ctx context.Context, bucket string) error {
	dir, err := o.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return diskErr("objects: create bucket", err)
	}
	for _, d := range []string{o.root, dir} {
		if err := tighten(d); err != nil {
			return diskErr("objects: bucket permissions", err)
		}
	}
	tmp := filepath.Join(o.root, diskTempDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return diskErr("objects: create temp dir", err)
	}
	if err := tighten(tmp); err != nil {
		return diskErr("objects: temp dir permissions", err)
	}
	return o.cleanTemps()
}

// tighten makes the directory at path its owner's only (0700).
func tighten(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(path, 0o700)
	}
	return nil
}

// cleanTemps removes the temp files no live writer holds: a crash mid-write
// leaves one behind, and it may hold a copy of data deleted since (a
// data-lake file with the records of a contact erased later).
func (o *Objects) cleanTemps() error {
	tmp := filepath.Join(o.root, diskTempDir)
	entries, err := os.ReadDir(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return diskErr("objects: read temp dir", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < diskTempGrace || !abandoned(path, fi) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return diskErr("objects: remove temp file", err)
		}
	}
	return nil
}

// Put writes body as key, atomically.
func (o *Objects) Put(ctx context.Context, bucket, key string, body io.Reader) error {
	return o.write(ctx, "objects: put", bucket, key, body)
}

// Replace writes body as the new content of key. On disk there are no old
// versions: the rename swaps the file, and the old content's blocks are freed
// once no reader holds it open.
func (o *Objects) Replace(ctx context.Context, bucket, key string, body io.Reader) error {
	return o.write(ctx, "objects: replace", bucket, key, body)
}

// write streams body into a temp file, syncs it and renames it over the
// object, so readers see the old content or the new, never a part.
func (o *Objects) write(ctx context.Context, op, bucket, key string, body io.Reader) (err error) {
	dir, path, err := o.objectPath(bucket, key)
	if err != nil {
		return err
	}
	if err := requireBucket(dir); err != nil {
		return err
	}
	tmpDir := filepath.Join(o.root, diskTempDir)
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return diskErr(op, err)
	}
	f, err := os.CreateTemp(tmpDir, "obj-*") // mode 0600
	if err != nil {
		return diskErr(op, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := lockTemp(f); err != nil {
		return diskErr(op, err)
	}
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(f, ctxReader{ctx: ctx, r: body}, buf); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return diskErr(op, err)
	}
	if err := f.Sync(); err != nil {
		return diskErr(op, err)
	}
	if !renameOpen {
		if err := f.Close(); err != nil {
			return diskErr(op, err)
		}
	}
	parent := filepath.Dir(path)
	// A concurrent Delete may prune the parent directory between MkdirAll
	// and Rename; then the rename fails with ENOENT and is simply tried again.
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return stores.Permanent(fmt.Errorf("%s: key conflicts with an existing object", op))
			}
			return diskErr(op, err)
		}
		err := os.Rename(tmp, path)
		if err == nil {
			break
		}
		if errors.Is(err, fs.ErrNotExist) && attempt < 5 {
			continue
		}
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) {
			return stores.Permanent(fmt.Errorf("%s: key conflicts with existing objects under it", op))
		}
		return diskErr(op, err)
	}
	if renameOpen {
		// Synced and in place: closing only releases the temp file's lock.
		_ = f.Close()
	}
	return diskErr(op, syncDir(parent))
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncDir makes a rename or unlink in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Get opens key, or returns ErrNotFound.
func (o *Objects) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	f, _, err := o.open(ctx, "objects: get", bucket, key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// open opens key's file for reading, with its FileInfo; ErrNotFound when
// there is no regular file.
func (o *Objects) open(ctx context.Context, op, bucket, key string) (*os.File, fs.FileInfo, error) {
	dir, path, err := o.objectPath(bucket, key)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := requireBucket(dir); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil, fmt.Errorf("%s: %w", op, stores.ErrNotFound)
		}
		return nil, nil, diskErr(op, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, nil, diskErr(op, err)
		}
		return nil, nil, fmt.Errorf("%s: %w", op, stores.ErrNotFound)
	}
	return f, fi, nil
}

// List calls fn for every object whose key starts with prefix, in byte-wise
// key order. Directories are read one at a time and their entries sorted as
// key text ("a/" for a directory), which is the order S3 lists in.
func (o *Objects) List(ctx context.Context, bucket, prefix string, fn func(key string) error) error {
	return o.ListPruned(ctx, bucket, prefix, nil, fn)
}

// ListPruned is List that does not read a directory whose key prefix
// (ending in "/") enter refuses; a nil enter refuses none. A caller that
// knows no key it wants can be under a prefix (another contact's
// directory) saves reading it: a listing reads every directory it enters.
func (o *Objects) ListPruned(ctx context.Context, bucket, prefix string, enter func(dir string) bool, fn func(key string) error) error {
	dir, err := o.bucketDir(bucket)
	if err != nil {
		return err
	}
	if strings.ContainsAny(prefix, "\x00\\") || strings.HasPrefix(prefix, "/") || !utf8.ValidString(prefix) {
		return stores.Permanent(errors.New("objects: invalid list prefix"))
	}
	if err := requireBucket(dir); err != nil {
		return err
	}
	dirPart, namePrefix := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirPart, namePrefix = prefix[:i+1], prefix[i+1:]
		if err := checkSegments(strings.Split(prefix[:i], "/")); err != nil {
			return stores.Permanent(errors.New("objects: invalid list prefix"))
		}
	}
	start := filepath.Join(dir, filepath.FromSlash(dirPart))
	if dirPart != "" && !within(dir, start) {
		return stores.Permanent(errors.New("objects: list prefix resolves outside its bucket"))
	}
	return o.walk(ctx, start, dirPart, namePrefix, enter, fn)
}

func (o *Objects) walk(ctx context.Context, dir, keyPrefix, namePrefix string, enter func(string) bool, fn func(string) error) error {
	entries, err := readDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // nothing under this prefix (or pruned by a concurrent Delete)
	}
	if err != nil {
		return diskErr("objects: list", err)
	}
	type entry struct {
		name, sortKey string
		dir           bool
	}
	list := make([]entry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, namePrefix) {
			continue
		}
		switch {
		case e.IsDir():
			list = append(list, entry{name: name, sortKey: name + "/", dir: true})
		case e.Type().IsRegular():
			list = append(list, entry{name: name, sortKey: name})
		}
		// Anything else (symlinks, sockets) is not an object.
	}
	sort.Slice(list, func(i, j int) bool { return list[i].sortKey < list[j].sortKey })
	for _, e := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.dir {
			sub := keyPrefix + e.name + "/"
			if enter != nil && !enter(sub) {
				continue
			}
			if err := o.walk(ctx, filepath.Join(dir, e.name), sub, "", enter, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(keyPrefix + e.name); err != nil {
			return err
		}
	}
	return nil
}

// readDir is os.ReadDir without its sort: walk sorts what it keeps by its
// own key, and a listing reads every directory of a bucket.
func readDir(dir string) ([]fs.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// Delete removes each key and then any parent directories left empty
// (never the bucket itself). Every key is checked before anything is
// removed, so a bad key in a batch deletes nothing. Deleting a missing key
// succeeds; a key naming a directory of other objects is not an object and
// deletes nothing.
func (o *Objects) Delete(ctx context.Context, bucket string, keys ...string) error {
	dir, err := o.bucketDir(bucket)
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		_, path, err := o.objectPath(bucket, k)
		if err != nil {
			return err
		}
		if !seen[path] {
			seen[path] = true
			paths = append(paths, path)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := requireBucket(dir); err != nil {
		return err
	}
	// Directories are synced and pruned even after a failure part-way, and
	// from missing keys too: a retry then finds the files gone, and must
	// still not leave their emptied directories (named by key segments)
	// behind.
	lost, visited := map[string]bool{}, map[string]bool{}
	err = removeFiles(ctx, paths, lost, visited)
	if perr := prune(dir, lost, visited); err == nil {
		err = perr
	}
	return err
}

// removeFiles removes the regular file at each path, noting in lost the
// directories that lost one and in visited every parent looked at.
func removeFiles(ctx context.Context, paths []string, lost, visited map[string]bool) error {
	for _, path := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		parent := filepath.Dir(path)
		visited[parent] = true
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return diskErr("objects: delete", err)
		}
		if fi.IsDir() {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return diskErr("objects: delete", err)
		}
		lost[parent] = true
	}
	return nil
}

// prune makes the removals in the lost directories durable, each directory
// synced once rather than once per file, then removes the directories under
// bucketDir left empty, walking up from each visited one. A walk stops at
// the first directory not empty; the walk from the last of its children to
// be emptied passes it again and removes it.
func prune(bucketDir string, lost, visited map[string]bool) error {
	var err error
	for d := range lost {
		if serr := syncDir(d); serr != nil && !errors.Is(serr, fs.ErrNotExist) && err == nil {
			err = diskErr("objects: delete", serr)
		}
	}
	for p := range visited {
		for d := p; within(bucketDir, d); d = filepath.Dir(d) {
			// Rmdir, not Remove: the parent of a missing key may be an
			// object ("a" when deleting "a/b"), which must stay.
			if syscall.Rmdir(d) != nil {
				break
			}
		}
	}
	return err
}

// Versions is 1 if key exists and 0 if not: there is no versioning on disk.
func (o *Objects) Versions(ctx context.Context, bucket, key string) (int, error) {
	dir, path, err := o.objectPath(bucket, key)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := requireBucket(dir); err != nil {
		return 0, err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return 0, nil
	}
	if err != nil {
		return 0, diskErr("objects: versions", err)
	}
	if fi.Mode().IsRegular() {
		return 1, nil
	}
	return 0, nil
}
