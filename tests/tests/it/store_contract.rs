//! The store contract, run against both implementations.

use accounts::store::MemoryStore;
use integration_tests::dynamo::{endpoint, fresh_store_as};
use integration_tests::store_contract as contract;

macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test]
            async fn memory() {
                contract::$case(MemoryStore::new()).await;
            }

            #[tokio::test]
            async fn dynamodb() {
                // The contract covers the operator's calls too (listing, roles, audit):
                // not auth-api's, so not checked against its policy.
                contract::$case(fresh_store_as(&endpoint(), "storecontract").await).await;
            }
        }
    )*};
}

both_stores!(
    ending_every_session_forgets_the_trusted_addresses,
    registrations_are_counted_per_source_even_in_parallel,
    a_created_user_is_found_with_every_field,
    an_unknown_email_is_not_found,
    a_second_user_with_the_same_email_is_refused_and_the_first_kept,
    concurrent_creates_of_one_email_have_exactly_one_winner,
    a_user_is_found_by_id,
    password_checks_are_counted_per_source_and_lock_at_the_threshold,
    concurrent_checks_are_admitted_at_most_to_the_threshold,
    the_email_window_counts_every_failure_once_and_starts_anew,
    trusted_sources_and_rehashes_are_stored,
    a_session_starts_and_its_token_is_found_with_family_and_user,
    a_token_rotates_once_and_keeps_its_sealed_successor,
    concurrent_rotations_of_one_token_have_exactly_one_winner,
    a_revoked_family_cannot_rotate,
    sessions_are_listed_by_user_with_their_client,
    deleting_a_user_removes_the_account_and_all_it_owns,
    the_session_state_follows_the_session_and_its_account,
    mfa_state_is_saved_only_over_the_state_read,
    concurrent_uses_of_one_code_have_exactly_one_winner,
    revoking_all_sessions_moves_the_epoch_on,
    a_password_change_starts_the_next_epoch_all_or_nothing,
    an_issued_token_is_live_and_a_newer_one_supersedes_it,
    a_verification_token_is_spent_once,
    a_reset_replaces_the_hash_ends_sessions_and_verifies_the_email,
    mail_and_token_checks_are_counted_in_their_windows,
    clearing_login_failures_forgets_every_source_and_the_window,
    an_authorization_code_is_spent_once_even_in_parallel,
    tokens_keep_their_use_and_join_only_a_live_session,
    consent_grows_by_every_grant_and_goes_with_the_account,
    passkeys_are_counted_on_the_user_and_bound_to_its_epoch,
    a_passkey_challenge_is_taken_once_even_in_parallel,
    a_device_grant_is_decided_polled_and_spent_once,
    federation_states_and_grants_are_taken_once_even_in_parallel,
    identities_link_once_and_go_with_their_account,
    the_last_way_to_sign_in_is_never_unlinked,
    every_committed_change_and_only_it_emits_its_event,
);
