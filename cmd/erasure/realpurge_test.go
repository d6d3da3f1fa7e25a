package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/erasure-project/erasure/schemas"
)

// purgeReadback reads every store back through the server's own API after a
// deletion against the real servers: no personal string of a deleted
// contact is searchable, stored in an active part or in any object version,
// every deleted artefact states when it was purged or by when it will be,
// and OpenSearch's deleted-document count reaches zero within that time.
// ClickHouse's inactive parts are reported against the stated purge time.
func purgeReadback(t *testing.T, env map[string]string, run string, outcomes []schemas.DeletionCompleted, strs []string) {
	t.Helper()
	ctx := t.Context()
	var osPurgeBy time.Time
	for _, o := range outcomes {
		for _, ch := range o.Channels {
			for _, a := range ch.Artefacts {
				if a.Deleted == 0 {
					continue
				}
				switch {
				case a.PurgedAt != nil:
				case a.PurgeBy != nil && a.PurgeJob != "":
					if a.Store == "opensearch" && a.PurgeBy.After(osPurgeBy) {
						osPurgeBy = *a.PurgeBy
					}
				default:
					t.Errorf("request %s %s/%s: %d deleted, no purge state", o.RequestID, ch.Channel, a.Artefact, a.Deleted)
				}
			}
		}
	}

	// Nothing of the deleted contacts is left in any store's live data.
	f := newFinder(t, env, run)
	defer f.close()
	left := 0
	for _, s := range strs {
		if n := f.find(t, s); n.total() != 0 {
			left += n.total()
			t.Errorf("a deleted contact's string is still stored: %+v", n)
		}
	}
	t.Logf("read back through the servers' APIs: %d strings sought in OpenSearch, ClickHouse (%d tables) and MinIO (%d object versions, %d bytes): found %d",
		len(strs), len(f.cols), f.versions, f.bytes, left)

	osURL, indexes := f.osURL, f.indexes
	if !osPurgeBy.IsZero() {
		wait := time.Until(osPurgeBy) + 30*time.Second
		deadline := time.Now().Add(min(max(wait, 30*time.Second), 5*time.Minute))
		for {
			n := osDocsDeleted(t, osURL, indexes)
			if n == 0 {
				t.Logf("OpenSearch: deleted documents expunged (docs.deleted 0), stated purge_by %s", osPurgeBy.Format(time.RFC3339))
				break
			} else if time.Now().After(deadline) {
				t.Errorf("OpenSearch: docs.deleted still %d after the stated purge time %s", n, osPurgeBy.Format(time.RFC3339))
				break
			}
			time.Sleep(2 * time.Second)
		}
	}

	var inactive uint64
	if err := f.conn.QueryRow(ctx, `SELECT count() FROM system.parts WHERE database = ? AND active = 0`, f.db).Scan(&inactive); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse: %d inactive parts awaiting the server's cleanup, as the outcomes' purge_by states", inactive)
}

// finder looks for a string in every store of a real-server run.
type finder struct {
	osURL, indexes string
	conn           clickhouse.Conn
	db             string
	cols           map[string][]string // table -> String columns
	s3             *s3.Client
	buckets        []string
	versions       int
	bytes          int64
}

type found struct{ OpenSearch, ClickHouse, MinIO int }

func (f found) total() int { return f.OpenSearch + f.ClickHouse + f.MinIO }

func newFinder(t *testing.T, env map[string]string, run string) *finder {
	t.Helper()
	ctx := t.Context()
	f := &finder{osURL: env["ERASURE_TEST_OPENSEARCH_URL"], indexes: "e2e" + run + "_*", db: "e2e_" + run, cols: map[string][]string{}}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{env["ERASURE_TEST_CLICKHOUSE_ADDR"]}})
	if err != nil {
		t.Fatal(err)
	}
	f.conn = conn
	rows, err := conn.Query(ctx, `SELECT table, name FROM system.columns WHERE database = ? AND type LIKE '%String%'`, f.db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		f.cols[table] = append(f.cols[table], col)
	}
	rows.Close()
	f.s3 = s3.New(s3.Options{BaseEndpoint: aws.String(env["ERASURE_TEST_S3_ENDPOINT"]), Region: env["ERASURE_TEST_S3_REGION"], UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(env["ERASURE_TEST_S3_ACCESS_KEY"], env["ERASURE_TEST_S3_SECRET_KEY"], "")})
	bs, err := f.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs.Buckets {
		if strings.HasPrefix(aws.ToString(b.Name), "e2e-"+run+"-") {
			f.buckets = append(f.buckets, aws.ToString(b.Name))
		}
	}
	return f
}

func (f *finder) close() { f.conn.Close() }

// find counts the documents, active rows and object versions holding s.
func (f *finder) find(t *testing.T, s string) found {
	t.Helper()
	ctx := t.Context()
	var n found
	q, _ := json.Marshal(map[string]any{"query": map[string]any{"multi_match": map[string]any{"query": s, "fields": []string{"*"}, "type": "phrase", "lenient": true}}})
	var res struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	osJSON(t, http.MethodPost, f.osURL+"/"+f.indexes+"/_search", q, &res)
	n.OpenSearch = res.Hits.Total.Value
	for table, cs := range f.cols {
		var conds []string
		var args []any
		for _, c := range cs {
			conds = append(conds, "position(`"+c+"`, ?) > 0")
			args = append(args, s)
		}
		var c uint64
		if err := f.conn.QueryRow(ctx, "SELECT count() FROM `"+f.db+"`.`"+table+"` WHERE "+strings.Join(conds, " OR "), args...).Scan(&c); err != nil {
			t.Fatalf("ClickHouse %s: %v", table, err)
		}
		n.ClickHouse += int(c)
	}
	f.versions, f.bytes = 0, 0
	for _, b := range f.buckets {
		p := s3.NewListObjectVersionsPaginator(f.s3, &s3.ListObjectVersionsInput{Bucket: aws.String(b)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page.Versions {
				obj, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: v.Key, VersionId: v.VersionId})
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(obj.Body)
				obj.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				f.versions++
				f.bytes += int64(len(body))
				if bytes.Contains(body, []byte(s)) {
					n.MinIO++
				}
			}
		}
	}
	return n
}

func osJSON(t *testing.T, method, u string, body []byte, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("OpenSearch %s %s: %d %s", method, (&url.URL{Path: req.URL.Path}).String(), res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(fmt.Errorf("OpenSearch %s: %w", req.URL.Path, err))
	}
}

// osDocsDeleted is the number of deleted, not yet expunged documents in the
// primaries of the indexes.
func osDocsDeleted(t *testing.T, osURL, indexes string) int64 {
	t.Helper()
	var stats struct {
		All struct {
			Primaries struct {
				Docs struct {
					Deleted int64 `json:"deleted"`
				} `json:"docs"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	osJSON(t, http.MethodGet, osURL+"/"+indexes+"/_stats/docs", nil, &stats)
	return stats.All.Primaries.Docs.Deleted
}
