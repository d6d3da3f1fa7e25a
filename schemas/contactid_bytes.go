package schemas

// IsContactIDByte reports whether c may appear in a contact ID under any
// configured rule: Check accepts only IDs made of these bytes, whatever the
// pattern. Whoever composes an ID with other text (an object key) needs it
// to tell where an ID can end.
func IsContactIDByte(c byte) bool { return contactIDByte(c) }
