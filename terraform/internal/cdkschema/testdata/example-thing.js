"use strict";
// Shaped like cdktn's generated code for a resource (trimmed by hand).
const cdktn = __importStar(require("cdktn"));
function exampleThingRuleTransitionToHclTerraform(struct) {
    const attrs = {
        days: {
            value: cdktn.numberToHclTerraform(struct.days),
            isBlock: false,
            type: "simple",
            storageClassType: "number",
        },
        storage_class: {
            value: cdktn.stringToHclTerraform(struct.storageClass),
            isBlock: false,
            type: "simple",
            storageClassType: "string",
        },
    };
    return Object.fromEntries(Object.entries(attrs).filter(([_, value]) => value !== undefined && value.value !== undefined));
}
class ExampleThingRuleTransitionOutputReference extends cdktn.ComplexObject {
    // days - computed: true, optional: true, required: false
    _days;
    get days() {
        return this.getNumberAttribute('days');
    }
    // storage_class - computed: false, optional: false, required: true
    _storageClass;
    get storageClass() {
        return this.getStringAttribute('storage_class');
    }
}
class ExampleThingRuleTransitionList extends cdktn.ComplexList {
}
function exampleThingRuleToHclTerraform(struct) {
    const attrs = {
        id: {
            value: cdktn.stringToHclTerraform(struct.id),
            isBlock: false,
            type: "simple",
            storageClassType: "string",
        },
        statement: {
            value: cdktn.anyToHclTerraform(struct.statement),
            isBlock: false,
            type: "simple",
            storageClassType: "any",
        },
        transition: {
            value: cdktn.listMapperHcl(exampleThingRuleTransitionToHclTerraform, true)(struct.transition),
            isBlock: true,
            type: "set",
            storageClassType: "ExampleThingRuleTransitionList",
        },
    };
    return Object.fromEntries(Object.entries(attrs).filter(([_, value]) => value !== undefined && value.value !== undefined));
}
class ExampleThingRuleOutputReference extends cdktn.ComplexObject {
    // id - computed: false, optional: false, required: true
    _id;
    get id() {
        return this.getStringAttribute('id');
    }
    // statement - computed: false, optional: true, required: false
    _statement;
    get statement() {
        return this.interpolationForAttribute('statement');
    }
    // transition - computed: false, optional: true, required: false
    _transition = new ExampleThingRuleTransitionList(this, "transition", true);
    get transition() {
        return this._transition;
    }
}
class ExampleThingSecretOutputReference extends cdktn.ComplexObject {
    // secret_arn - computed: true, optional: false, required: false
    get secretArn() {
        return this.getStringAttribute('secret_arn');
    }
    // labels - computed: true, optional: false, required: false
    _labels = new cdktn.StringMap(this, "labels");
    get labels() {
        return this._labels;
    }
}
class ExampleThingSecretList extends cdktn.ComplexList {
}
class ExampleThingTimeoutsOutputReference extends cdktn.ComplexObject {
    // create - computed: false, optional: true, required: false
    _create;
    get create() {
        return this.getStringAttribute('create');
    }
}
class ExampleThing extends cdktn.TerraformResource {
    static tfResourceType = "example_thing";
    // arn - computed: true, optional: false, required: false
    get arn() {
        return this.getStringAttribute('arn');
    }
    // name - computed: true, optional: true, required: false
    _name;
    get name() {
        return this.getStringAttribute('name');
    }
    // password_wo - computed: false, optional: true, required: false
    _passwordWo;
    get passwordWo() {
        return this.getStringAttribute('password_wo');
    }
    // subnet_ids - computed: false, optional: false, required: true
    _subnetIds;
    get subnetIds() {
        return cdktn.Fn.tolist(this.getListAttribute('subnet_ids'));
    }
    // tags - computed: false, optional: true, required: false
    _tags;
    get tags() {
        return this.getStringMapAttribute('tags');
    }
    // secret - computed: true, optional: false, required: false
    _secret = new ExampleThingSecretList(this, "secret", false);
    get secret() {
        return this._secret;
    }
    // rule - computed: false, optional: false, required: true
    _rule = new ExampleThingRuleOutputReference(this, "rule");
    get rule() {
        return this._rule;
    }
    // timeouts - computed: false, optional: true, required: false
    _timeouts = new ExampleThingTimeoutsOutputReference(this, "timeouts");
    get timeouts() {
        return this._timeouts;
    }
    synthesizeHclAttributes() {
        const attrs = {
            name: {
                value: cdktn.stringToHclTerraform(this._name),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
            password_wo: {
                value: cdktn.stringToHclTerraform(this._passwordWo),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
            subnet_ids: {
                value: cdktn.listMapperHcl(cdktn.stringToHclTerraform, false)(this._subnetIds),
                isBlock: false,
                type: "set",
                storageClassType: "stringList",
            },
            tags: {
                value: cdktn.hashMapperHcl(cdktn.stringToHclTerraform)(this._tags),
                isBlock: false,
                type: "map",
                storageClassType: "stringMap",
            },
            rule: {
                value: exampleThingRuleToHclTerraform(this._rule.internalValue),
                isBlock: true,
                type: "list",
                storageClassType: "ExampleThingRuleList",
            },
            timeouts: {
                value: exampleThingTimeoutsToHclTerraform(this._timeouts.internalValue),
                isBlock: true,
                type: "struct",
                storageClassType: "ExampleThingTimeouts",
            },
        };
        return Object.fromEntries(Object.entries(attrs).filter(([_, value]) => value !== undefined && value.value !== undefined));
    }
}
exports.ExampleThing = ExampleThing;
