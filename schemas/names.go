// Package schemas is the contract between erasure and everything that talks to
// it: event types, their JSON Schemas, topic and group names, header keys and
// the contact ID rule. Stable names live here and nowhere else.
package schemas

// Topic suffixes; the deployed name is Prefix + suffix (default prefix "erasure.").
const (
	DefaultTopicPrefix = "erasure."

	TopicRequests       = "requests"
	TopicFinalize       = "finalize"
	TopicChannelResults = "channel-results"
	TopicOutcomes       = "outcomes"
	TopicDLQ            = "dlq"
	TopicHolds          = "holds"
)

// Topics resolves topic names for one deployment.
type Topics struct{ Prefix string }

func (t Topics) Requests() string       { return t.Prefix + TopicRequests }
func (t Topics) Finalize() string       { return t.Prefix + TopicFinalize }
func (t Topics) ChannelResults() string { return t.Prefix + TopicChannelResults }
func (t Topics) Outcomes() string       { return t.Prefix + TopicOutcomes }
func (t Topics) DLQ() string            { return t.Prefix + TopicDLQ }
func (t Topics) Holds() string          { return t.Prefix + TopicHolds }

// Consumer groups. Renaming one makes it re-read its topics from the start.
const (
	GroupAggregatorRequests = "erasure-aggregator-requests"
	GroupAggregatorResults  = "erasure-aggregator-results"
	GroupAggregatorHolds    = "erasure-aggregator-holds"
)

// ChannelGroup is the consumer group of one channel consumer.
func ChannelGroup(ch Channel) string { return "erasure-channel-" + string(ch) }

// Header keys carried on every Kafka record.
const (
	HeaderEventType     = "erasure-event-type"
	HeaderSchemaVersion = "erasure-schema-version"
	HeaderCorrelationID = "erasure-correlation-id"
	HeaderDLQReason     = "erasure-dlq-reason"
	HeaderDLQTopic      = "erasure-dlq-source-topic"

	// HeaderSignature is the hex HMAC-SHA256 of the payload of an internal
	// event, and HeaderKeyID names the key it was made with.
	HeaderSignature = "erasure-signature"
	HeaderKeyID     = "erasure-key-id"
)

// Event type names, used in headers and as the "type" field of every event.
const (
	TypeDeletionRequested = "DeletionRequested"
	TypeFinalizeRequested = "FinalizeRequested"
	TypeChannelCompleted  = "ChannelCompleted"
	TypeDeletionCompleted = "DeletionCompleted"
	TypeHoldRequested     = "HoldRequested"
)

// Version is the schema version every event is written with.
const Version = 1

// MaxEventBytes bounds an encoded event; larger ones are rejected unread.
const MaxEventBytes = 1 << 20

// MaxContactsPerRequest bounds one request so that a single event stays small
// and one failure cannot hold up an unbounded batch.
const MaxContactsPerRequest = 1000

// Channel is one data channel of the contact centre.
type Channel string

const (
	ChannelContactSearch Channel = "contact-search"
	ChannelDataWarehouse Channel = "data-warehouse"
	ChannelEmailWebform  Channel = "email-webform"
	ChannelVoice         Channel = "voice"
	ChannelMessaging     Channel = "messaging"
	ChannelSocial        Channel = "social"
)

// ArtefactChannels are deleted in phase 1, in parallel; contact-search is
// deleted last, only after all of them succeeded.
var ArtefactChannels = []Channel{
	ChannelDataWarehouse, ChannelEmailWebform, ChannelVoice, ChannelMessaging, ChannelSocial,
}

// AllChannels lists every channel, phase-2 channel last.
var AllChannels = append(append([]Channel{}, ArtefactChannels...), ChannelContactSearch)

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool {
	for _, k := range AllChannels {
		if c == k {
			return true
		}
	}
	return false
}

// MetadataPartitionKey is the message metadata key whose value becomes the
// Kafka record key. Every event is keyed by its request ID, so one request's
// events share a partition.
const MetadataPartitionKey = "partition_key"
