// Package demo seeds the stores with a realistic, obviously fake dataset:
// what `erasure up` shows on first start and what the end-to-end tests
// delete.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

// Stores are where the dataset goes, as the data map places it.
type Stores struct {
	Index     stores.Index
	Objects   stores.Objects
	Warehouse stores.Warehouse
	DataMap   *locate.DataMap
}

// Options shape the dataset.
type Options struct {
	Contacts int
	Seed     uint64    // same seed, same dataset
	Now      time.Time // contacts fall in the 60 days before it
	// Chunk is how many contacts are held before they are written (default
	// 20,000), so a large seed runs in bounded memory. Each chunk writes its
	// own data-lake part file per day, as a lake's writer does.
	Chunk int
}

// Contact is one seeded contact and what it was given.
type Contact struct {
	ID       string
	Kind     string // voice, chat, email, social
	Date     time.Time
	ThreadID string // email contacts share threads
	Video    bool
	Attach   bool
	Webform  bool
	// The customer, as the contact index and the artefacts name them.
	Name, Phone, Email string
	personal           []string
}

// PersonalStrings returns every piece of personal data seeded for the
// contact: its customer's name, phone number and email address and every
// free text written for it (transcripts, chat, email, message and form
// bodies, recording and attachment contents). Each contains the name, phone
// or email, which no other contact of the dataset shares (in datasets of up
// to 8000 contacts), so finding one anywhere means finding this contact's
// data. Contact IDs are not among them: events legitimately carry them.
func (c Contact) PersonalStrings() []string {
	return append([]string{c.Name, c.Phone, c.Email}, c.personal...)
}

// Demo kinds cycle so every artefact type is present in any run of 12 or
// more contacts.
var demoKinds = []string{"voice", "chat", "email", "social"}

var (
	demoFirst  = []string{"Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn"}
	demoLast   = []string{"Example", "Sample", "Testperson", "Placeholder", "Demo", "Fictional"}
	demoAgents = []string{"agent.ada", "agent.brook", "agent.cruz", "agent.dale", "agent.ellis", "agent.fern"}
	demoQueues = []string{"Billing", "Support", "Sales", "Retentions", "Complaints"}
	chatKinds  = []string{"WEBCHAT", "WHATSAPP", "SMS"}
	// demoSyllables make every surname of a dataset unique (demoSurname).
	demoSyllables = []string{"ba", "ce", "di", "fo", "gu", "ka", "le", "mi", "no", "pu",
		"ra", "se", "ti", "vo", "wu", "ya", "zo", "he", "ju", "qi"}
	// demoPhoneRanges are Ofcom's numbers reserved for drama, 1000 each.
	demoPhoneRanges = []string{"+44 7700 900%03d", "+44 20 7946 0%03d", "+44 113 496 0%03d", "+44 114 496 0%03d",
		"+44 115 496 0%03d", "+44 116 496 0%03d", "+44 117 496 0%03d", "+44 118 496 0%03d"}
)

// demoSurname makes the i-th contact's surname, such as "Example-Kaleno":
// three syllables spell i, so no two of the first 8000 contacts share a
// name, and no name is part of another.
func demoSurname(last string, i int) string {
	n := len(demoSyllables)
	a, b, c := demoSyllables[i/(n*n)%n], demoSyllables[i/n%n], demoSyllables[i%n]
	return last + "-" + strings.ToUpper(a[:1]) + a[1:] + b + c
}

// demoPhone gives the i-th contact a phone number no other of the first
// 8000 has.
func demoPhone(i int) string {
	return fmt.Sprintf(demoPhoneRanges[i/1000%len(demoPhoneRanges)], i%1000)
}

// Seed writes a realistic, obviously fake dataset into every store the data
// map names: contact and CTR index entries, Amazon Connect-style objects,
// data-lake files holding many contacts each, warehouse rows and email
// threads shared by several contacts.
func Seed(ctx context.Context, st Stores, opt Options) ([]Contact, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now().UTC()
	}
	if opt.Chunk <= 0 {
		opt.Chunk = 20000
	}
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	dm := st.DataMap
	s := &seeder{st: st, dm: dm, rng: rng, inst: dm.Instance, rows: map[string][]stores.Row{}, lake: map[string]*bytes.Buffer{}}
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	var contacts []Contact
	var threadID string
	var inThread int
	for i := 0; i < opt.Contacts; i++ {
		c := Contact{
			ID:   uuidFrom(rng),
			Kind: demoKinds[i%len(demoKinds)],
			Date: opt.Now.Add(-time.Duration(rng.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Second),
		}
		switch c.Kind {
		case "voice":
			c.Video = (i/4)%3 == 0
		case "chat":
			c.Attach = (i/4)%2 == 0
		case "email":
			c.Attach = (i/4)%2 == 0
			c.Webform = (i/4)%2 == 1
			// Threads of three contacts: a customer writing back and forth.
			if inThread == 0 {
				threadID = fmt.Sprintf("thread-%06d", i)
				s.rows["email_threads"] = append(s.rows["email_threads"], stores.Row{
					"thread_id": threadID, "subject": "Re: your account (demo)", "created_at": c.Date.Format(time.RFC3339)})
			}
			c.ThreadID = threadID
			inThread = (inThread + 1) % 3
		}
		if err := s.contact(ctx, i, &c); err != nil {
			return nil, err
		}
		contacts = append(contacts, c)
		if (i+1)%opt.Chunk == 0 {
			if err := s.flush(ctx); err != nil {
				return nil, err
			}
		}
	}
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	return contacts, nil
}

// Ensure creates what Seed writes into: the demo tables of the default data
// map, and every bucket and index the data map names. It writes no data, so
// it can run on every start.
func Ensure(ctx context.Context, st Stores) error {
	return (&seeder{st: st, dm: st.DataMap}).ensure(ctx)
}

type seeder struct {
	part int // the chunk being gathered: its data-lake part number
	st   Stores
	dm   *locate.DataMap
	rng  *rand.Rand
	inst string
	docs []stores.Doc
	ctrs []stores.Doc
	rows map[string][]stores.Row
	lake map[string]*bytes.Buffer // data-lake file key -> JSON Lines
}

// demoTables are the warehouse tables of the default data map and their
// columns.
var demoTables = map[string][]string{
	"dw_contact_records":    {"contact_id", "record_id", "channel", "queue", "agent", "initiated_at", "duration_seconds"},
	"dw_etr":                {"contact_id", "etr_id", "event", "at"},
	"email_threads":         {"thread_id", "subject", "created_at"},
	"email_thread_messages": {"thread_id", "message_id", "contact_id", "sent_at", "direction", "body"},
	"webform_submissions":   {"submission_id", "contact_id", "form", "submitted_at", "payload"},
	"qa_evaluations":        {"evaluation_id", "contact_id", "score", "evaluator", "at"},
	"contact_sentiment":     {"contact_id", "overall", "customer_score", "agent_score"},
	"messaging_messages":    {"message_id", "contact_id", "platform", "sent_at", "body"},
	"messaging_etr":         {"contact_id", "etr_id", "event", "at"},
	"social_messages":       {"message_id", "contact_id", "platform", "kind", "body", "at"},
}

func (s *seeder) ensure(ctx context.Context) error {
	for _, idx := range []string{"contacts", "ctr"} {
		if err := s.st.Index.EnsureIndex(ctx, idx); err != nil {
			return err
		}
	}
	for t, cols := range demoTables {
		if err := s.st.Warehouse.EnsureTable(ctx, t, cols); err != nil {
			return err
		}
	}
	for _, arts := range s.dm.Channels {
		for _, a := range arts {
			var err error
			switch a.Kind {
			case locate.KindObjects, locate.KindDatalake:
				err = s.st.Objects.EnsureBucket(ctx, a.Bucket)
			case locate.KindIndex:
				err = s.st.Index.EnsureIndex(ctx, a.Index)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *seeder) put(ctx context.Context, ch schemas.Channel, artefact, id string, date time.Time, suffix, body string) error {
	a, ok := s.dm.Find(ch, artefact)
	if !ok {
		return nil // a data map without this artefact: nothing to seed
	}
	return s.st.Objects.Put(ctx, a.Bucket, a.ObjectKey(id, date, suffix), strings.NewReader(body))
}

func (s *seeder) contact(ctx context.Context, i int, c *Contact) error {
	r := s.rng
	first, last := demoFirst[r.IntN(len(demoFirst))], demoSurname(demoLast[r.IntN(len(demoLast))], i)
	name, phone := first+" "+last, demoPhone(i)
	email := fmt.Sprintf("%s.%s.%04d@example.com", strings.ToLower(first), strings.ToLower(last), i)
	c.Name, c.Phone, c.Email = name, phone, email
	// text records a free text written for the contact and returns it.
	text := func(s string) string { c.personal = append(c.personal, s); return s }
	agent, queue := demoAgents[r.IntN(len(demoAgents))], demoQueues[r.IntN(len(demoQueues))]
	channel := strings.ToUpper(c.Kind)
	sub := ""
	if c.Kind == "chat" {
		sub = chatKinds[r.IntN(len(chatKinds))]
	}
	ts := c.Date.Format(time.RFC3339)
	stamp := c.Date.Format("20060102T1504")
	dur := 60 + r.IntN(1200)
	s.docs = append(s.docs, stores.Doc{ID: c.ID, Fields: map[string]any{
		"contact_id": c.ID, "channel": channel, "subtype": sub, "initiation_timestamp": ts,
		"disconnect_timestamp": c.Date.Add(time.Duration(dur) * time.Second).Format(time.RFC3339),
		"agent":                agent, "queue": queue, "customer_name": name,
		"customer_phone": phone, "customer_email": email, "instance": s.inst,
	}})
	for n := 1; n <= 2; n++ {
		s.ctrs = append(s.ctrs, stores.Doc{ID: fmt.Sprintf("%s-ctr-%d", c.ID, n), Fields: map[string]any{
			"contact_id": c.ID, "segment": n, "channel": channel, "agent": agent, "queue": queue, "initiation_timestamp": ts}})
	}
	s.rows["dw_contact_records"] = append(s.rows["dw_contact_records"], stores.Row{"contact_id": c.ID, "record_id": fmt.Sprintf("rec-%06d", i),
		"channel": channel, "queue": queue, "agent": agent, "initiated_at": ts, "duration_seconds": fmt.Sprint(dur)})
	for _, ev := range []string{"INITIATED", "DISCONNECTED"} {
		s.rows["dw_etr"] = append(s.rows["dw_etr"], stores.Row{"contact_id": c.ID, "etr_id": fmt.Sprintf("etr-%06d-%s", i, ev), "event": ev, "at": ts})
	}
	if a, ok := s.dm.Find(schemas.ChannelDataWarehouse, "data_lake_records"); ok {
		key := a.DatalakePrefix(c.Date) + fmt.Sprintf("part-%05d.jsonl", s.part)
		buf := s.lake[key]
		if buf == nil {
			buf = &bytes.Buffer{}
			s.lake[key] = buf
		}
		rec, _ := json.Marshal(map[string]any{"contact_id": c.ID, "channel": channel, "queue": queue, "agent": agent,
			"initiated_at": ts, "duration_seconds": dur, "customer_phone": phone})
		buf.Write(append(rec, '\n'))
	}
	switch c.Kind {
	case "voice":
		if err := s.put(ctx, schemas.ChannelVoice, "call_recordings", c.ID, c.Date, stamp+"_UTC.wav", text("RIFF demo audio of a call with "+name)); err != nil {
			return err
		}
		if err := s.put(ctx, schemas.ChannelVoice, "transcripts", c.ID, c.Date, stamp+".json",
			`{"Transcript":[{"ParticipantId":"CUSTOMER","Content":"`+text("Hello, this is "+name+" calling about my bill.")+`"}]}`); err != nil {
			return err
		}
		if c.Video {
			for _, f := range []string{"session.webm", "snapshot-1.png", "snapshot-2.png"} {
				if err := s.put(ctx, schemas.ChannelVoice, "video_sessions", c.ID, c.Date, f, text("demo "+f+" of "+name)); err != nil {
					return err
				}
			}
		}
		s.rows["qa_evaluations"] = append(s.rows["qa_evaluations"], stores.Row{"evaluation_id": fmt.Sprintf("qa-%06d", i), "contact_id": c.ID,
			"score": fmt.Sprint(50 + r.IntN(50)), "evaluator": "qa.lead", "at": ts})
		s.rows["contact_sentiment"] = append(s.rows["contact_sentiment"], stores.Row{"contact_id": c.ID, "overall": "POSITIVE",
			"customer_score": fmt.Sprint(r.IntN(5)), "agent_score": fmt.Sprint(r.IntN(5))})
	case "chat":
		if err := s.put(ctx, schemas.ChannelMessaging, "chat_messages", c.ID, c.Date, stamp+"_UTC.json",
			`{"Participants":[{"DisplayName":"`+name+`"}],"Transcript":[{"Content":"`+text("My number is "+phone)+`"}]}`); err != nil {
			return err
		}
		if c.Attach {
			if err := s.put(ctx, schemas.ChannelMessaging, "chat_attachments", c.ID, c.Date, "photo-1.jpg", text("demo photo sent by "+name)); err != nil {
				return err
			}
		}
		for n := 1; n <= 3; n++ {
			s.rows["messaging_messages"] = append(s.rows["messaging_messages"], stores.Row{"message_id": fmt.Sprintf("msg-%06d-%d", i, n),
				"contact_id": c.ID, "platform": sub, "sent_at": ts, "body": text(fmt.Sprintf("demo message %d from %s", n, name))})
		}
		s.rows["messaging_etr"] = append(s.rows["messaging_etr"], stores.Row{"contact_id": c.ID, "etr_id": fmt.Sprintf("metr-%06d", i), "event": "CHAT_ENDED", "at": ts})
	case "email":
		if err := s.put(ctx, schemas.ChannelEmailWebform, "email_content", c.ID, c.Date, "message.eml",
			"From: "+email+"\r\nSubject: Re: your account (demo)\r\n\r\n"+text("Hello, "+name+" here.")); err != nil {
			return err
		}
		if c.Attach {
			if err := s.put(ctx, schemas.ChannelEmailWebform, "email_attachments", c.ID, c.Date, "invoice.pdf", text("%PDF demo invoice for "+name)); err != nil {
				return err
			}
		}
		if c.Webform {
			s.rows["webform_submissions"] = append(s.rows["webform_submissions"], stores.Row{"submission_id": fmt.Sprintf("wf-%06d", i),
				"contact_id": c.ID, "form": "contact-us", "submitted_at": ts, "payload": text(`{"name":"` + name + `"}`)})
		}
		for n := 1; n <= 2; n++ {
			s.rows["email_thread_messages"] = append(s.rows["email_thread_messages"], stores.Row{"thread_id": c.ThreadID,
				"message_id": fmt.Sprintf("em-%06d-%d", i, n), "contact_id": c.ID, "sent_at": ts, "direction": []string{"INBOUND", "OUTBOUND"}[n-1],
				"body": text(fmt.Sprintf("demo email %d from %s", n, name))})
		}
	case "social":
		for _, kind := range []string{"dm", "comment"} {
			s.rows["social_messages"] = append(s.rows["social_messages"], stores.Row{"message_id": fmt.Sprintf("fb-%06d-%s", i, kind),
				"contact_id": c.ID, "platform": "FACEBOOK", "kind": kind, "body": text("demo " + kind + " from " + name), "at": ts})
		}
		if err := s.put(ctx, schemas.ChannelSocial, "social_artefacts", c.ID, c.Date, "fb_image.jpg", text("demo social image of "+name)); err != nil {
			return err
		}
	}
	return nil
}

func (s *seeder) flush(ctx context.Context) error {
	if err := s.st.Index.Put(ctx, "contacts", s.docs...); err != nil {
		return err
	}
	if err := s.st.Index.Put(ctx, "ctr", s.ctrs...); err != nil {
		return err
	}
	tables := make([]string, 0, len(s.rows))
	for t := range s.rows {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		if err := s.st.Warehouse.Insert(ctx, t, s.rows[t]...); err != nil {
			return fmt.Errorf("seed %s: %w", t, err)
		}
	}
	if a, ok := s.dm.Find(schemas.ChannelDataWarehouse, "data_lake_records"); ok {
		for key, buf := range s.lake {
			if err := s.st.Objects.Put(ctx, a.Bucket, key, bytes.NewReader(buf.Bytes())); err != nil {
				return err
			}
		}
	}
	s.docs, s.ctrs, s.rows, s.lake = nil, nil, map[string][]stores.Row{}, map[string]*bytes.Buffer{}
	s.part++
	return nil
}

// uuidFrom draws a version-4 UUID from rng, so a seed gives the same IDs.
func uuidFrom(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
