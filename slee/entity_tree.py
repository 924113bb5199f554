"""
SBB entities and their trees, as the engine (L{slee.engine.Engine}) keeps
them: made as roots or children, looked up (the records an operation made
first), given their SBB object for an operation, and removed, a whole tree
at a time, when nothing is attached to it any more.
"""


from slee.context import SbbContext, SbbLocalObject
from slee.errors import ConfigurationError, NoSuchEntityError
from slee.records import SbbEntityRecord, new_id
from slee.activities import attached_changed


class EntityTree:
    """The engine's SBB entities (a part of L{slee.engine.Engine})."""

    def entity(self, entity_id):
        entity = self.find_entity(entity_id)
        if entity is None:
            raise NoSuchEntityError(f"SBB entity {entity_id} does not exist (any more)")
        return entity

    def entity_exists(self, entity_id):
        return self.find_entity(entity_id) is not None

    def _entity(self, entity_id, work):
        """
        @return: the record of entity C{entity_id}, or C{None}: the one its
            SBB object in the operation running C{work} holds, if it has one
            (quicker than the tree).
        """
        sbb = work.sbbs.get(entity_id)
        return self.find_entity(entity_id) if sbb is None else sbb._entity

    def _sbb(self, entity_id, entity, work, component=None):
        """
        @return: the SBB object of entity C{entity_id} (its record
            C{entity}; an entity of C{component}, if given) for the
            operation running C{work}.  It is made on first use, then serves
            every call into the entity (life-cycle methods, handlers, local
            calls) until the operation ends, as a JAIN SLEE SBB object stays
            assigned to its entity for a transaction.
        """
        sbb = work.sbbs.get(entity_id)
        if sbb is None:
            if component is None:
                component = self.registry.sbbs[entity.sbb]
            sbb = work.sbbs[entity_id] = component.new_object(
                entity, SbbContext(self, entity_id, entity, component))
        return sbb

    def local_object(self, entity_id):
        entity = self.entity(entity_id)
        return SbbLocalObject(self, entity_id, self.registry.sbbs[entity.sbb].local_names)

    def call_local(self, entity_id, name, args, kwargs):
        """Call a local interface method of an entity, in this transaction."""
        work = self.work()
        entity = self._entity(entity_id, work)
        if entity is None:
            raise NoSuchEntityError(f"SBB entity {entity_id} does not exist (any more)")
        return getattr(self._sbb(entity_id, entity, work), name)(*args, **kwargs)

    def resource_adaptor(self, name):
        entity = self.registry.ra_entities.get(name)
        if entity is None:
            raise ConfigurationError(f"no resource adaptor entity named {name!r}")
        return entity.sbb_interface

    def set_priority(self, entity_id, priority):
        entity = self.entity(entity_id)
        entity.priority = priority
        for key in entity.attached:
            record = self.find_activity(key)
            record.attached[entity_id] = priority
            attached_changed(record)

    def _create_entity(self, service_id, component, parent, relation, name, priority, work):
        """@return: the new entity's id and record, once its creation callbacks ran."""
        entity_id = new_id(self._entities)
        root = entity_id if parent is None else parent.root
        entity = SbbEntityRecord(entity_id, service_id, component.id,
                                 None if parent is None else parent.id,
                                 root, relation, name, priority)
        self._staged(work).new_entities[entity_id] = entity
        life_cycle = component.life_cycle
        if life_cycle:
            sbb = self._sbb(entity_id, entity, work, component)
            if "sbb_create" in life_cycle:
                sbb.sbb_create()
            if "sbb_post_create" in life_cycle:
                sbb.sbb_post_create()
        return entity_id, entity

    def create_child(self, parent, relation_name):
        work = self.work()
        relation, child = self.registry.sbbs[parent.sbb].relations[relation_name]
        entity_id, _ = self._create_entity(parent.service, child, parent, relation_name, None,
                                           relation.priority, work)
        parent.children.setdefault(relation_name, []).append(entity_id)
        parent._p_changed = True
        return SbbLocalObject(self, entity_id, child.local_names)

    def remove_entity(self, entity_id):
        """Remove an entity and its descendants, in this transaction."""
        work = self.work()
        entity = self.entity(entity_id)
        if entity.parent is not None:
            parent = self.find_entity(entity.parent)
            if parent is not None:
                siblings = parent.children.get(entity.relation, [])
                if entity_id in siblings:
                    siblings.remove(entity_id)
                    parent._p_changed = True
                work.garbage.add(entity.root)
        self._remove_tree(entity_id, entity, work)

    def _tree_attached(self, entity):
        if entity.attached:
            return True
        children = entity.children
        if children:
            for relation in children.values():
                for child_id in relation:
                    child = self.find_entity(child_id)
                    if child is not None and self._tree_attached(child):
                        return True
        return False

    def _remove_tree(self, entity_id, entity, work):
        children = entity.children
        if children:
            for relation in list(children.values()):
                for child_id in list(relation):
                    child = self.find_entity(child_id)
                    if child is not None:
                        self._remove_tree(child_id, child, work)
        if "sbb_remove" in self.registry.sbbs[entity.sbb].life_cycle:
            self._sbb(entity_id, entity, work).sbb_remove()
        work.sbbs.pop(entity_id, None)
        for key in entity.attached:
            record = self.find_activity(key)
            if record is not None:
                record.attached.pop(entity_id, None)
                attached_changed(record)
                work.idle_activities.add(key)
        staged = work.new_entities
        if staged and entity_id in staged:
            del staged[entity_id]
        else:
            del self._entities[entity_id]
            work.evict(entity, entity.cmp)
        if entity.parent is None:
            service_id, name = entity.service, entity.convergence_name
            roots, staged_roots = self._roots_of(service_id), work.new_roots
            if staged_roots and (service_id, name) in staged_roots:
                del staged_roots[service_id, name]
            elif name in roots:
                del roots[name]
            if not roots and not any(key[0] == service_id for key in staged_roots or ()):
                self.service_emptied(service_id)

    def service_emptied(self, service_id):
        """
        The last root entity of a service is gone: a stopping service
        becomes inactive.  Replaced by the container.
        """
