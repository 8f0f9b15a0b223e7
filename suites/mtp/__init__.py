"""suites/mtp: Speculative decoding: wired as the profile says, and accepting drafts as well as the floors demand."""
