package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("key-schedule.json", checkKeySchedule) }

type keyScheduleEpoch struct {
	TreeHash                Hex `json:"tree_hash"`
	CommitSecret            Hex `json:"commit_secret"`
	PSKSecret               Hex `json:"psk_secret"`
	ConfirmedTranscriptHash Hex `json:"confirmed_transcript_hash"`

	GroupContext       Hex `json:"group_context"`
	JoinerSecret       Hex `json:"joiner_secret"`
	WelcomeSecret      Hex `json:"welcome_secret"`
	InitSecret         Hex `json:"init_secret"`
	SenderDataSecret   Hex `json:"sender_data_secret"`
	EncryptionSecret   Hex `json:"encryption_secret"`
	ExporterSecret     Hex `json:"exporter_secret"`
	EpochAuthenticator Hex `json:"epoch_authenticator"`
	ExternalSecret     Hex `json:"external_secret"`
	ConfirmationKey    Hex `json:"confirmation_key"`
	MembershipKey      Hex `json:"membership_key"`
	ResumptionPSK      Hex `json:"resumption_psk"`
	ExternalPub        Hex `json:"external_pub"`
	Exporter           struct {
		Label   string `json:"label"` // used as given: the ASCII text of a hex string
		Context Hex    `json:"context"`
		Length  Num    `json:"length"`
		Secret  Hex    `json:"secret"`
	} `json:"exporter"`
}

type keyScheduleCase struct {
	CipherSuite       uint16             `json:"cipher_suite"`
	GroupID           Hex                `json:"group_id"`
	InitialInitSecret Hex                `json:"initial_init_secret"`
	Epochs            []keyScheduleEpoch `json:"epochs"`
}

// checkKeySchedule runs every epoch of each case through the key schedule of
// RFC 9420, Section 8, chaining init_secret from epoch to epoch.
func checkKeySchedule(data []byte) ([]Case, error) {
	var tcs []keyScheduleCase
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		out = append(out, Case{Name: caseName(i, tc.CipherSuite), Err: keyScheduleCaseErr(&tc)})
	}
	return out, nil
}

func keyScheduleCaseErr(tc *keyScheduleCase) error {
	s, err := suite.Lookup(suite.ID(tc.CipherSuite))
	if err != nil {
		return err
	}
	if len(tc.Epochs) == 0 {
		return fmt.Errorf("no epochs")
	}
	initSecret := keyschedule.Secret(tc.InitialInitSecret)
	for n, ep := range tc.Epochs {
		if err := keyScheduleEpochErr(s, tc, uint64(n), initSecret, &ep); err != nil {
			return fmt.Errorf("epoch %d: %w", n, err)
		}
		initSecret = keyschedule.Secret(ep.InitSecret)
	}
	return nil
}

func keyScheduleEpochErr(s *suite.Suite, tc *keyScheduleCase, n uint64, initSecret keyschedule.Secret, ep *keyScheduleEpoch) error {
	// RFC 9420, Section 8.1: the GroupContext of epoch n, no extensions.
	gc, err := codec.Marshal(&wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             wire.CipherSuite(tc.CipherSuite),
		GroupID:                 tc.GroupID,
		Epoch:                   n,
		TreeHash:                ep.TreeHash,
		ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
	})
	if err != nil {
		return err
	}
	if !bytes.Equal(gc, ep.GroupContext) {
		return mismatch("group_context", gc, ep.GroupContext)
	}

	joiner := keyschedule.NewJoinerSecret(s, initSecret, keyschedule.Secret(ep.CommitSecret), gc)
	member := joiner.WithPSK(keyschedule.Secret(ep.PSKSecret))
	e := member.Epoch(gc)
	welcome := member.WelcomeSecret()

	checks := []struct {
		name      string
		got, want []byte
	}{
		{"joiner_secret", joiner.Secret(), ep.JoinerSecret},
		{"welcome_secret", welcome, ep.WelcomeSecret},
		{"init_secret", e.Init, ep.InitSecret},
		{"sender_data_secret", e.SenderData, ep.SenderDataSecret},
		{"encryption_secret", e.Encryption, ep.EncryptionSecret},
		{"exporter_secret", e.Exporter, ep.ExporterSecret},
		{"epoch_authenticator", e.Authenticator, ep.EpochAuthenticator},
		{"external_secret", e.External, ep.ExternalSecret},
		{"confirmation_key", e.Confirmation, ep.ConfirmationKey},
		{"membership_key", e.Membership, ep.MembershipKey},
		{"resumption_psk", e.Resumption, ep.ResumptionPSK},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, c.want) {
			return mismatch(c.name, c.got, c.want)
		}
	}

	// RFC 9420, Section 8.3: external_pub = KEM.DeriveKeyPair(external_secret).
	_, pub, err := e.ExternalKeyPair()
	if err != nil {
		return fmt.Errorf("external key pair: %w", err)
	}
	if !bytes.Equal(pub, ep.ExternalPub) {
		return mismatch("external_pub", pub, ep.ExternalPub)
	}

	// RFC 9420, Section 8.5: MLS-Exporter.
	x := ep.Exporter
	exported, err := e.Export(string(x.Label), x.Context, int(x.Length))
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	if !bytes.Equal(exported, x.Secret) {
		return mismatch("exporter.secret", exported, x.Secret)
	}
	return nil
}
