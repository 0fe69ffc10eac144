# frozen_string_literal: true

module Fuzz
  # Fibers the chaos leaves alone for a moment: one in IO#gets, which loses the part of a line
  # it had taken when an interrupt ends it (CRuby's behaviour, with or without a scheduler).
  SHIELDED = {}.compare_by_identity

  def self.shield
    SHIELDED[Fiber.current] = true
    yield
  ensure
    SHIELDED.delete(Fiber.current)
  end
end
