package stores

import (
	"context"
	"errors"
	"net/mail"
	"strings"

	"github.com/erasure-project/erasure/schemas"
)

// A data subject is one person, named by an exact phone number or email
// address; their contacts are what a subject deletion deletes, so the
// search can never widen: no substring, no pattern (see Query.Phone and
// Query.Email).

// maxSubjectEmail bounds an email address looked up.
const maxSubjectEmail = 254

// SubjectQuery turns a phone number or an email address into the index
// query that finds exactly that person's contacts, or says why it cannot.
// The error never repeats the input. The CLI and the web API both use it.
func SubjectQuery(phone, email string) (Query, error) {
	phone, email = strings.TrimSpace(phone), strings.TrimSpace(email)
	switch {
	case (phone == "") == (email == ""):
		return Query{}, errors.New("give either a phone number or an email address")
	case phone != "":
		if len(phone) > 64 || strings.ContainsFunc(phone, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Query{}, errors.New("the phone number is not a phone number")
		}
		return Query{Phone: phone}, nil
	default:
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || a.Name != "" || len(email) > maxSubjectEmail {
			return Query{}, errors.New("the email address is not an address such as name@example.com")
		}
		return Query{Email: email}, nil
	}
}

// FindSubject lists the contacts a subject query finds, up to
// MaxContactsPerRequest, newest first; truncated says there were more.
func FindSubject(ctx context.Context, ix interface {
	Search(ctx context.Context, index string, q Query) (SearchResult, error)
}, index string, q Query) (docs []Doc, truncated bool, err error) {
	q.Limit = SearchMaxLimit
	for q.Offset = 0; len(docs) < schemas.MaxContactsPerRequest; q.Offset += q.Limit {
		res, err := ix.Search(ctx, index, q)
		if err != nil {
			return nil, false, err
		}
		docs = append(docs, res.Docs...)
		if len(res.Docs) < q.Limit || int64(len(docs)) >= res.Total {
			return docs[:min(len(docs), schemas.MaxContactsPerRequest)], res.Total > schemas.MaxContactsPerRequest, nil
		}
	}
	return docs[:schemas.MaxContactsPerRequest], true, nil
}
