# frozen_string_literal: true

# What `sidekiq -r test/support/sidekiq_app.rb` loads in test/test_integration_sidekiq.rb: the
# gem's Sidekiq adapter (from this checkout) and the test's jobs.

require_relative "../../lib/uring_machine/sidekiq"
require_relative "sidekiq_jobs"
