"""Filters, registered by name in the order the chain runs them (see ``proxy.app.build_chain``)."""
